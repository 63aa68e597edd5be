import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const ENTITY_CREATION_STATUSES = ['queued', 'delivered', 'failed'] as const;
export type EntityCreationStatus = (typeof ENTITY_CREATION_STATUSES)[number];

/**
 * Service-owned outbox: a placeholder entity that PY-2 must create, written in the same
 * transaction as the config save and drained by the legacy bridge worker.
 */
export const EntityCreationOutbox = defineEntity({
  name: 'EntityCreationOutbox',
  tableName: 'md_entity_creation_outbox',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    labId: p.integer().fieldName('lab_id'),
    orgId: p.integer().fieldName('org_id').nullable(),
    configId: p.integer().fieldName('config_id'),
    entityType: p.string().length(64).fieldName('entity_type'),
    name: p.string().length(255),
    idempotencyKey: p.string().length(64).fieldName('idempotency_key'),
    status: p.string().length(16).$type<EntityCreationStatus>(),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime(6).fieldName('next_attempt_at'),
    claimedBy: p.string().length(64).fieldName('claimed_by').nullable(),
    claimExpiresAt: p.datetime(6).fieldName('claim_expires_at').nullable(),
    lastError: p.string().length(1024).fieldName('last_error').nullable(),
    objectId: p.integer().fieldName('object_id').nullable(),
    requestedByLabUserId: p.integer().fieldName('requested_by_lab_user_id').nullable(),
    requestedByDoctorId: p.integer().fieldName('requested_by_doctor_id').nullable(),
    createdAt: p.datetime(6).fieldName('created_at'),
    updatedAt: p.datetime(6).fieldName('updated_at'),
    deliveredAt: p.datetime(6).fieldName('delivered_at').nullable(),
    failedAt: p.datetime(6).fieldName('failed_at').nullable(),
    /** Set by an operator retry; the give-up window counts from it when set. */
    retriedAt: p.datetime(6).fieldName('retried_at').nullable(),
    retryCount: p.integer().fieldName('retry_count').default(0),
  }),
});
export type EntityCreationOutbox = InferEntity<typeof EntityCreationOutbox>;
