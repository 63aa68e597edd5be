import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em, SqlReader } from '../db/database.js';
import { driverQuery, slicesOf } from '../db/driver-sql.js';

/** A UTC `datetime(6)` as the database prints it (see lab-fields.service). */
type DbTimestamp = string;

/**
 * Why a detail is still absent when staff resolve it by hand: the codes of FHIR R4's
 * DataAbsentReason value set (http://terminology.hl7.org/CodeSystem/data-absent-reason), so a
 * patient who declined leaves the queue as `asked-declined` instead of with a made-up value.
 */
export const REASON_CODES = [
  'unknown',
  'asked-unknown',
  'temp-unknown',
  'not-asked',
  'asked-declined',
  'masked',
  'not-applicable',
  'unsupported',
  'as-text',
  'error',
  'not-a-number',
  'negative-infinity',
  'positive-infinity',
  'not-performed',
  'not-permitted',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export const REASON_NOTE_MAX = 500;

export const reasonCodeSchema = z.enum(REASON_CODES, {
  error: `must be a FHIR data-absent-reason code: ${REASON_CODES.join(', ')}`,
});

/** A short free-text note; blank counts as none. */
export const reasonNoteSchema = z
  .string()
  .trim()
  .max(REASON_NOTE_MAX, `must be at most ${REASON_NOTE_MAX} characters`)
  .transform((note) => (note === '' ? undefined : note));

export interface ResolutionReason {
  reasonCode?: ReasonCode | undefined;
  reasonNote?: string | undefined;
}

/** A reason is only meaningful for resolving; naming `names.code` / `names.note` as sent. */
export function checkReasonOnlyWhenResolving(
  input: { isResolved: boolean; reasonCode?: unknown; reasonNote?: unknown },
  ctx: z.RefinementCtx,
  names: { code: string; note: string; isResolved: string },
): void {
  if (input.isResolved) return;
  for (const [key, name] of [
    ['reasonCode', names.code],
    ['reasonNote', names.note],
  ] as const) {
    if (input[key] != null) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `is only allowed with ${names.isResolved}: true`,
      });
    }
  }
}

const placeholders = (values: readonly unknown[]) => values.map(() => '?').join(', ');

/**
 * Records that these rows (already updated in `tx`, in the caller's scope) were resolved by hand, with the
 * reason when one was given; a row resolved by hand again gets the new record. One statement per slice of
 * ids (see ID_SLICE). `VALUES(col)` is deprecated on MySQL 8.0.20+ but still works there, and is the only
 * form MariaDB has.
 */
export async function recordManualResolutions(
  tx: Em,
  principal: Principal,
  ids: readonly number[],
  reason: ResolutionReason,
  resolvedAt: Date,
): Promise<void> {
  for (const slice of slicesOf(ids)) {
    await driverQuery(
      tx,
      `INSERT INTO \`md_lab_field_resolutions\`
  (\`lab_missing_details_id\`, \`lab_id\`, \`org_id\`, \`reason_code\`, \`reason_note\`, \`resolved_at\`,
   \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`)
SELECT d.\`id\`, d.\`lab_id\`, d.\`org_id\`, ?, ?, ?, ?, ?
FROM \`LabMissingDetails\` d
WHERE d.\`lab_id\` = ? AND d.\`id\` IN (?)
ON DUPLICATE KEY UPDATE \`reason_code\` = VALUES(\`reason_code\`), \`reason_note\` = VALUES(\`reason_note\`),
  \`resolved_at\` = VALUES(\`resolved_at\`), \`org_id\` = VALUES(\`org_id\`),
  \`resolved_by_lab_user_id\` = VALUES(\`resolved_by_lab_user_id\`),
  \`resolved_by_doctor_id\` = VALUES(\`resolved_by_doctor_id\`)`,
      [
        reason.reasonCode ?? null,
        reason.reasonNote ?? null,
        resolvedAt,
        principal.role === 'lab_user' ? principal.userId : null,
        principal.role === 'doctor' ? principal.userId : null,
        principal.labId,
        slice,
      ],
    );
  }
}

/** Unresolved rows carry no manual resolution any more. */
export async function forgetManualResolutions(tx: Em, labId: number, ids: readonly number[]): Promise<void> {
  for (const slice of slicesOf(ids)) {
    await driverQuery(
      tx,
      'DELETE FROM `md_lab_field_resolutions` WHERE `lab_id` = ? AND `lab_missing_details_id` IN (?)',
      [labId, slice],
    );
  }
}

export interface StoredReason {
  reasonCode: ReasonCode | null;
  reasonNote: string | null;
}

/**
 * The reasons of these resolved rows' manual resolutions, by row id (a primary-key lookup per row). A
 * record only counts while it matches the row's current resolution (`resolved_at`), so a row reopened and
 * resolved again by some other path (legacy, the engine) never shows an old reason.
 */
export async function reasonsOf(
  em: SqlReader,
  labId: number,
  rows: ReadonlyArray<{ id: number; resolvedAt: DbTimestamp }>,
): Promise<Map<number, StoredReason>> {
  if (rows.length === 0) return new Map();
  const found = await em.execute<
    Array<{
      lab_missing_details_id: number | string;
      reason_code: ReasonCode | null;
      reason_note: string | null;
      resolved_at_text: DbTimestamp;
    }>
  >(
    `SELECT \`lab_missing_details_id\`, \`reason_code\`, \`reason_note\`,
  DATE_FORMAT(\`resolved_at\`, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at_text
FROM \`md_lab_field_resolutions\`
WHERE \`lab_missing_details_id\` IN (${placeholders(rows)}) AND \`lab_id\` = ?`,
    [...rows.map((row) => row.id), labId],
  );
  const current = new Map(rows.map((row) => [row.id, row.resolvedAt]));
  const reasons = new Map<number, StoredReason>();
  for (const record of found) {
    const id = Number(record.lab_missing_details_id);
    if (current.get(id) !== record.resolved_at_text) continue;
    reasons.set(id, { reasonCode: record.reason_code, reasonNote: record.reason_note });
  }
  return reasons;
}
