import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** The legacy system's shared audit table; `details` holds JSON text. */
export const ActivityLog = defineEntity({
  name: 'ActivityLog',
  tableName: 'ActivityLog',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    orgId: p.integer().fieldName('org_id').nullable(),
    labUserId: p.integer().fieldName('lab_user_id').nullable(),
    doctorId: p.integer().fieldName('doctor_id').nullable(),
    module: p.string().length(64),
    action: p.string().length(64),
    objectType: p.string().length(64).fieldName('object_type').nullable(),
    objectId: p.bigint('number').fieldName('object_id').nullable(),
    message: p.string().length(1024),
    details: p.text().columnType('longtext').nullable(),
    createdAt: p.datetime(6).fieldName('created_at'),
  }),
});
export type ActivityLog = InferEntity<typeof ActivityLog>;
