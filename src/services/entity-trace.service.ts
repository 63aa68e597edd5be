import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { LabMissingDetailsConfiguration, MissingDetailsEntityCreation } from '../entities/index.js';
import { bumpLabConfigVersion } from '../repositories/lab-config.repository.js';
import { writeActivity } from './activity-log.service.js';

export const LOCAL_ENTITY_TYPES = ['insurance', 'group'] as const;
export const BRIDGED_ENTITY_TYPES = ['referral_doctor', 'organization'] as const;
export type EntityType = (typeof LOCAL_ENTITY_TYPES)[number] | (typeof BRIDGED_ENTITY_TYPES)[number];

export interface EntityCreatedTrace {
  labId: number;
  orgId: number | null;
  configId: number;
  entityType: EntityType | string;
  objectId: number;
  /** The placeholder text the entity was named after. */
  name: string;
  actor?: Pick<Principal, 'role' | 'userId'> | null;
  track: 'local' | 'legacy_bridge';
}

/**
 * The success trace of one entity creation, for both tracks: the MissingDetailsEntityCreation row,
 * the config's `entity_object_id`, and the ActivityLog `entity_creation_succeeded` row. Call it inside
 * the transaction that also marks the creation done, so that it is written exactly once. It bumps
 * the lab's config version, so every instance's config cache sees the new entity.
 */
export async function recordEntityCreated(
  em: Em,
  trace: EntityCreatedTrace,
  now = new Date(),
): Promise<void> {
  await em.insert(MissingDetailsEntityCreation, {
    configId: trace.configId,
    entityName: trace.entityType,
    objectId: trace.objectId,
    labId: trace.labId,
    orgId: trace.orgId,
    createdAt: now,
  });
  await em.nativeUpdate(
    LabMissingDetailsConfiguration,
    { id: trace.configId, labId: trace.labId },
    { entityObjectId: trace.objectId },
  );
  await writeActivity(
    em,
    {
      labId: trace.labId,
      orgId: trace.orgId,
      actor: trace.actor ?? null,
      action: 'entity_creation_succeeded',
      objectType: trace.entityType,
      objectId: trace.objectId,
      message: `Created placeholder ${trace.entityType} ${trace.objectId} for missing-details config ${trace.configId}`,
      details: {
        config_id: trace.configId,
        entity_type: trace.entityType,
        object_id: trace.objectId,
        track: trace.track,
      },
    },
    now,
  );
  // A new placeholder entity changes what captures compare against (entity ids).
  await bumpLabConfigVersion(em, trace.labId);
}
