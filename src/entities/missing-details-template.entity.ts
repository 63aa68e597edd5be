import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const MissingDetailsTemplate = defineEntity({
  name: 'MissingDetailsTemplate',
  tableName: 'MissingDetailsTemplates',
  properties: (p) => ({
    id: p.integer().primary().autoincrement(),
    name: p.string().length(100),
    displayName: p.string().length(255).fieldName('display_name'),
    module: p.string().length(32),
    category: p.string().length(32),
    entityType: p.string().length(64).fieldName('entity_type').nullable(),
    inputType: p.string().length(32).fieldName('input_type').default('text'),
    sortOrder: p.integer().fieldName('sort_order').default(0),
    isActive: p.boolean().fieldName('is_active').columnType('tinyint(1)').default(true),
    createdAt: p.datetime(6).fieldName('created_at'),
    updatedAt: p.datetime(6).fieldName('updated_at'),
  }),
});
export type MissingDetailsTemplate = InferEntity<typeof MissingDetailsTemplate>;
