import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const LabInsurance = defineEntity({
  name: 'LabInsurance',
  tableName: 'LabInsurance',
  properties: (p) => ({
    id: p.integer().primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    name: p.string().length(255),
    isActive: p.boolean().fieldName('is_active').columnType('tinyint(1)').default(true),
    createdAt: p.datetime(6).fieldName('created_at'),
  }),
});
export type LabInsurance = InferEntity<typeof LabInsurance>;
