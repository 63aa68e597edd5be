import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** The success trace of one placeholder entity created because a config was saved. */
export const MissingDetailsEntityCreation = defineEntity({
  name: 'MissingDetailsEntityCreation',
  tableName: 'MissingDetailsEntityCreation',
  properties: (p) => ({
    id: p.integer().primary().autoincrement(),
    configId: p.integer().fieldName('config_id'),
    entityName: p.string().length(64).fieldName('entity_name'),
    objectId: p.integer().fieldName('object_id'),
    labId: p.integer().fieldName('lab_id'),
    orgId: p.integer().fieldName('org_id').nullable(),
    createdAt: p.datetime(6).fieldName('created_at'),
  }),
});
export type MissingDetailsEntityCreation = InferEntity<typeof MissingDetailsEntityCreation>;
