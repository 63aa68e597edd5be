import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** Service-owned: the first answer to a keyed request, replayed for retries within 24 h. */
export const IdempotencyKey = defineEntity({
  name: 'IdempotencyKey',
  tableName: 'md_idempotency_keys',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    operation: p.string().length(64),
    idempotencyKey: p.string().length(255).fieldName('idempotency_key'),
    requestHash: p.string().length(64).fieldName('request_hash'),
    responseBody: p.text().columnType('longtext').fieldName('response_body').nullable(),
    createdAt: p.datetime(6).fieldName('created_at'),
    expiresAt: p.datetime(6).fieldName('expires_at'),
  }),
});
export type IdempotencyKey = InferEntity<typeof IdempotencyKey>;
