import { randomUUID } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { EntityCreationOutbox, LabGroup, LabInsurance } from '../entities/index.js';
import { metricsRegistry } from '../metrics.js';
import { deliveredObjectIdByName } from '../repositories/entity-creation-outbox.repository.js';
import {
  lockPlaceholderEntityByName,
  reactivatePlaceholderEntity,
} from '../repositories/placeholder-entities.repository.js';
import { writeActivity } from './activity-log.service.js';
import type { EntityCreationView } from './entity-creation-operator.service.js';
import { LOCAL_ENTITY_TYPES, recordEntityCreated } from './entity-trace.service.js';

const entityCreationsStarted = new Counter({
  name: 'md_entity_creations_started_total',
  help: 'Placeholder entity creations started by config saves, by track (local: created at once; legacy_bridge: queued for PY-2)',
  labelNames: ['track'] as const,
  registers: [metricsRegistry],
});

/** A placeholder entity a config save asks for: named after the config's placeholder value. */
export interface EntityCreationRequest {
  configId: number;
  entityType: string;
  name: string;
}

/**
 * What a config save answers for each creation it started: the part of a creation's view
 * (EntityCreationView) known inside the save. `created`: made locally in the save's transaction;
 * `queued`: in the outbox for the PY-2 bridge.
 */
export type StartedEntityCreation = Pick<EntityCreationView, 'configId' | 'entityType' | 'objectId'> & {
  status: 'created' | 'queued';
};

type LocalEntityType = (typeof LOCAL_ENTITY_TYPES)[number];

function isLocal(entityType: string): entityType is LocalEntityType {
  return (LOCAL_ENTITY_TYPES as readonly string[]).includes(entityType);
}

/**
 * Starts the entity creations of one config save, inside its transaction. Insurances and groups are
 * created here and traced at once; every other type (referral doctors, organizations, and types the
 * catalog may add later) is dispatched by PY-2, so it goes to the outbox the bridge worker drains.
 * Results are in request order.
 */
export async function startEntityCreations(
  em: Em,
  principal: Principal,
  requests: readonly EntityCreationRequest[],
  now: Date,
): Promise<StartedEntityCreation[]> {
  const views: StartedEntityCreation[] = [];
  const bridged: EntityCreationRequest[] = [];
  for (const request of requests) {
    if (isLocal(request.entityType)) {
      views.push(await createLocally(em, principal, request, request.entityType, now));
      continue;
    }
    // A name PY-2 already created for the lab is not sent again: the config takes that object.
    const objectId = await deliveredObjectId(em, principal.labId, request);
    if (objectId !== undefined) {
      await recordEntityCreated(
        em,
        {
          ...request,
          labId: principal.labId,
          orgId: principal.orgId,
          objectId,
          actor: principal,
          track: 'legacy_bridge',
        },
        now,
      );
      views.push({ configId: request.configId, entityType: request.entityType, status: 'created', objectId });
    } else {
      bridged.push(request);
      views.push({
        configId: request.configId,
        entityType: request.entityType,
        status: 'queued',
        objectId: null,
      });
    }
  }
  await queueForBridge(em, principal, bridged, now);
  return views;
}

async function createLocally(
  em: Em,
  principal: Principal,
  request: EntityCreationRequest,
  entityType: LocalEntityType,
  now: Date,
): Promise<StartedEntityCreation> {
  const objectId =
    (await reuseLocalEntity(em, principal.labId, entityType, request.name)) ??
    Number(
      await em.insert(entityType === 'insurance' ? LabInsurance : LabGroup, {
        labId: principal.labId,
        name: request.name,
        isActive: true,
        createdAt: now,
      }),
    );
  await recordEntityCreated(
    em,
    {
      labId: principal.labId,
      orgId: principal.orgId,
      configId: request.configId,
      entityType,
      objectId,
      name: request.name,
      actor: principal,
      track: 'local',
    },
    now,
  );
  entityCreationsStarted.inc({ track: 'local' });
  return { configId: request.configId, entityType, status: 'created', objectId };
}

/**
 * The lab's insurance or group of that name, reactivated when it was retired: one placeholder
 * entity per (lab, type, name), so a config enabled again (or set back to an earlier value) does not
 * give the lab's pick-lists a second "Self pay (missing)".
 */
async function reuseLocalEntity(
  em: Em,
  labId: number,
  entityType: LocalEntityType,
  name: string,
): Promise<number | undefined> {
  const sql = sqlSession(em);
  const found = await lockPlaceholderEntityByName(sql, entityType, labId, name);
  if (!found) return undefined;
  if (!found.isActive) await reactivatePlaceholderEntity(sql, entityType, found.id);
  return found.id;
}

/** The object id PY-2 already gave the lab for an entity of that type and name, if it did. */
async function deliveredObjectId(
  em: Em,
  labId: number,
  request: EntityCreationRequest,
): Promise<number | undefined> {
  return deliveredObjectIdByName(sqlSession(em), labId, request.entityType, request.name);
}

async function queueForBridge(
  em: Em,
  principal: Principal,
  requests: readonly EntityCreationRequest[],
  now: Date,
): Promise<void> {
  if (requests.length === 0) return;
  const rows = requests.map((request) => ({
    ...request,
    idempotencyKey: randomUUID(),
  }));
  await em.insertMany(
    EntityCreationOutbox,
    rows.map((row) => ({
      labId: principal.labId,
      orgId: principal.orgId,
      configId: row.configId,
      entityType: row.entityType,
      name: row.name,
      idempotencyKey: row.idempotencyKey,
      status: 'queued' as const,
      attempts: 0,
      nextAttemptAt: now,
      requestedByLabUserId: principal.role === 'lab_user' ? principal.userId : null,
      requestedByDoctorId: principal.role === 'doctor' ? principal.userId : null,
      createdAt: now,
      updatedAt: now,
    })),
  );
  for (const row of rows) {
    await writeActivity(
      em,
      {
        labId: principal.labId,
        orgId: principal.orgId,
        actor: principal,
        action: 'entity_creation_queued',
        objectType: row.entityType,
        message: `Queued placeholder ${row.entityType} "${row.name}" for missing-details config ${row.configId}`,
        details: {
          config_id: row.configId,
          entity_type: row.entityType,
          name: row.name,
          idempotency_key: row.idempotencyKey,
          track: 'legacy_bridge',
        },
      },
      now,
    );
  }
  entityCreationsStarted.inc({ track: 'legacy_bridge' }, requests.length);
}
