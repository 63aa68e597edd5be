import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const LabGroup = defineEntity({
  name: 'LabGroup',
  tableName: 'LabGroup',
  properties: (p) => ({
    id: p.integer().primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    name: p.string().length(255),
    isActive: p.boolean().fieldName('is_active').columnType('tinyint(1)').default(true),
    createdAt: p.datetime(6).fieldName('created_at'),
  }),
});
export type LabGroup = InferEntity<typeof LabGroup>;
