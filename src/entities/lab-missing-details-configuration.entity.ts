import { defineEntity, type InferEntity } from '@mikro-orm/core';
import { MicrosecondTimestampType } from '../db/microsecond-timestamp.type.js';

export const LabMissingDetailsConfiguration = defineEntity({
  name: 'LabMissingDetailsConfiguration',
  tableName: 'LabMissingDetailsConfiguration',
  properties: (p) => ({
    id: p.integer().primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    fieldId: p.integer().fieldName('field_id'),
    fieldName: p.string().length(100).fieldName('field_name'),
    fieldValue: p.string().length(255).fieldName('field_value'),
    fieldModule: p.string().length(32).fieldName('field_module'),
    fieldCategory: p.string().length(32).fieldName('field_category'),
    entityObjectId: p.integer().fieldName('entity_object_id').nullable(),
    isDisabled: p.boolean().fieldName('is_disabled').columnType('tinyint(1)').default(false),
    // The service's own column (migration 20260107000000-work-queue); legacy never sees it.
    dueInHours: p.integer().fieldName('due_in_hours').columnType('smallint unsigned').nullable(),
    createdByLabUserId: p.integer().fieldName('created_by_lab_user_id').nullable(),
    updatedByLabUserId: p.integer().fieldName('updated_by_lab_user_id').nullable(),
    // Read and written as text, so that microseconds survive (see MicrosecondTimestampType).
    createdAt: p.type(MicrosecondTimestampType).fieldName('created_at'),
    updatedAt: p.type(MicrosecondTimestampType).fieldName('updated_at'),
  }),
});
export type LabMissingDetailsConfiguration = InferEntity<typeof LabMissingDetailsConfiguration>;
