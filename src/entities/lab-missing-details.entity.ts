import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** A runtime incident: one field of one patient (or bill) that still holds the lab's placeholder. */
export const LabMissingDetails = defineEntity({
  name: 'LabMissingDetails',
  tableName: 'LabMissingDetails',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    orgId: p.integer().fieldName('org_id').nullable(),
    userDetailsId: p.integer().fieldName('user_details_id'),
    billId: p.integer().fieldName('bill_id').nullable(),
    fieldId: p.integer().fieldName('field_id'),
    configId: p.integer().fieldName('config_id').nullable(),
    fieldName: p.string().length(100).fieldName('field_name'),
    fieldValue: p.string().length(255).fieldName('field_value'),
    fieldModule: p.string().length(32).fieldName('field_module'),
    isResolved: p.boolean().fieldName('is_resolved').columnType('tinyint(1)').default(false),
    resolvedAt: p.datetime(6).fieldName('resolved_at').nullable(),
    resolvedByDoctorId: p.integer().fieldName('resolved_by_doctor_id').nullable(),
    resolvedByLabUserId: p.integer().fieldName('resolved_by_lab_user_id').nullable(),
    createdAt: p.datetime(6).fieldName('created_at'),
    updatedAt: p.datetime(6).fieldName('updated_at'),
  }),
});
export type LabMissingDetails = InferEntity<typeof LabMissingDetails>;
