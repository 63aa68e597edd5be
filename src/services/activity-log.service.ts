import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { ActivityLog } from '../entities/index.js';

export const ACTIVITY_MODULE = 'missing_details';

export interface ActivityEntry {
  labId: number;
  orgId?: number | null;
  /** Who did it; absent for the service's own background work. */
  actor?: Pick<Principal, 'role' | 'userId'> | null;
  action: string;
  objectType?: string | null;
  objectId?: number | null;
  message: string;
  details?: Record<string, unknown> | null;
}

function actorColumns(actor: ActivityEntry['actor']): { labUserId: number | null; doctorId: number | null } {
  if (!actor) return { labUserId: null, doctorId: null };
  return actor.role === 'doctor'
    ? { labUserId: null, doctorId: actor.userId }
    : { labUserId: actor.userId, doctorId: null };
}

function activityRow(entry: ActivityEntry, now: Date) {
  return {
    labId: entry.labId,
    orgId: entry.orgId ?? null,
    ...actorColumns(entry.actor),
    module: ACTIVITY_MODULE,
    action: entry.action,
    objectType: entry.objectType ?? null,
    objectId: entry.objectId ?? null,
    message: entry.message.slice(0, 1024),
    details: entry.details ? JSON.stringify(entry.details) : null,
    createdAt: now,
  };
}

/** Writes one row of the legacy audit table, in the caller's transaction when `em` is inside one. */
export async function writeActivity(em: Em, entry: ActivityEntry, now = new Date()): Promise<void> {
  await em.insert(ActivityLog, activityRow(entry, now));
}

/** Writes several audit rows in one multi-row INSERT. */
export async function writeActivities(
  em: Em,
  entries: readonly ActivityEntry[],
  now = new Date(),
): Promise<void> {
  if (entries.length === 0) return;
  await em.insertMany(
    ActivityLog,
    entries.map((entry) => activityRow(entry, now)),
  );
}
