import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import {
  authHeader,
  insertRows,
  newLabId,
  patchLabFields,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

const LIST = '/api-v3/account/missing-details/lab-fields';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const patch = (claims: TokenClaims, body: unknown) => patchLabFields(t, claims, body);

async function list(claims: TokenClaims, query = '') {
  const res = await t.app.inject({ url: `${LIST}${query}`, headers: await authHeader(claims) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().results as Array<Record<string, unknown>>;
}

async function trpc(claims: TokenClaims, path: string, input: unknown) {
  const headers = await authHeader(claims);
  return input === undefined || path.endsWith('list')
    ? t.app.inject({
        url: `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`,
        headers,
      })
    : t.app.inject({
        method: 'POST',
        url: `/trpc/${path}`,
        headers: { ...headers, 'content-type': 'application/json' },
        payload: JSON.stringify(input),
      });
}

/** The manual-resolution record each row's current resolution matches, by row id (none: not resolved by hand). */
async function records(ids: number[]) {
  const rows = await t.db.em().execute<
    Array<{
      id: number | string;
      reason_code: string | null;
      reason_note: string | null;
      resolved_by_lab_user_id: number | null;
      resolved_by_doctor_id: number | null;
    }>
  >(
    `SELECT d.id, r.reason_code, r.reason_note,
  NULLIF(r.resolved_by_lab_user_id, 0) AS resolved_by_lab_user_id, NULLIF(r.resolved_by_doctor_id, 0) AS resolved_by_doctor_id
FROM LabMissingDetails d
JOIN md_manual_resolutions r ON r.lab_id = d.lab_id AND r.resolved_at = d.resolved_at
  AND r.resolved_by_lab_user_id = COALESCE(d.resolved_by_lab_user_id, 0)
  AND r.resolved_by_doctor_id = COALESCE(d.resolved_by_doctor_id, 0)
WHERE d.is_resolved = 1 AND d.id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  return new Map(rows.map((row) => [Number(row.id), row]));
}

describe('resolving by hand with a data-absent reason', () => {
  it('lets a patient who declined leave the queue with the reason and a note, shown in the resolved listing', async () => {
    const labId = newLabId();
    const [declined, other] = await insertRows(t.db, [{ labId }, { labId, fieldId: 2 }]);
    const res = await patch(
      { labId, userId: 7 },
      {
        ids: [declined],
        is_resolved: true,
        reason_code: 'asked-declined',
        reason_note: '  Patient will not share an email  ',
      },
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ updated_count: 1 });

    const open = await list({ labId, userId: 7 });
    expect(open.map((row) => row.id)).toEqual([other]);
    // Open listings keep the legacy item exactly: no reason keys.
    expect(Object.keys(open[0]!)).not.toContain('reason_code');

    const resolved = await list({ labId, userId: 7 }, '?is_resolved=true');
    expect(resolved).toEqual([
      expect.objectContaining({
        id: declined,
        is_resolved: true,
        resolved_by_lab_user_id: 7,
        field_value: 'noemail@lab.in',
        reason_code: 'asked-declined',
        reason_note: 'Patient will not share an email',
      }),
    ]);
  });

  it('records every manual resolution, with null reason fields when none was given', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    expect(
      (await patch({ labId, userId: 8, role: 'doctor' }, { ids: [id], is_resolved: true })).statusCode,
    ).toBe(200);
    expect((await records([id!])).get(id!)).toMatchObject({
      reason_code: null,
      reason_note: null,
      resolved_by_doctor_id: 8,
      resolved_by_lab_user_id: null,
    });
    const [row] = await list({ labId, userId: 8 }, '?is_resolved=true');
    expect(row).toMatchObject({ id, reason_code: null, reason_note: null, resolved_by_doctor_id: 8 });
  });

  it('replaces the reason when a row is resolved again, and drops it when the row is reopened', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    await patch({ labId, userId: 7 }, { ids: [id], is_resolved: true, reason_code: 'temp-unknown' });
    await patch(
      { labId, userId: 9 },
      { ids: [id], is_resolved: true, reason_code: 'asked-unknown', reason_note: 'Asked twice' },
    );
    expect((await records([id!])).get(id!)).toMatchObject({
      reason_code: 'asked-unknown',
      reason_note: 'Asked twice',
      resolved_by_lab_user_id: 9,
    });

    expect((await patch({ labId, userId: 7 }, { ids: [id], is_resolved: false })).json()).toEqual({
      updated_count: 1,
    });
    expect((await records([id!])).size).toBe(0);
    const [reopened] = await list({ labId, userId: 7 });
    expect(reopened).toMatchObject({ id, is_resolved: false });
    expect(reopened).not.toHaveProperty('reason_code');
  });

  it('keeps the reason of a row stamped again by hand only when the new call gives it', async () => {
    const labId = newLabId();
    const [id, untouched] = await insertRows(t.db, [{ labId }, { labId }]);
    await patch({ labId, userId: 7 }, { ids: [id, untouched], is_resolved: true, reason_code: 'masked' });
    await patch({ labId, userId: 7 }, { ids: [id], is_resolved: true });
    const afterPlain = await records([id!, untouched!]);
    expect(afterPlain.get(id!)).toMatchObject({
      reason_code: null,
      reason_note: null,
      resolved_by_lab_user_id: 7,
    });
    // The row left out of the second call keeps the first call's record.
    expect(afterPlain.get(untouched!)).toMatchObject({ reason_code: 'masked' });

    await patch(
      { labId, userId: 7 },
      { ids: [id], is_resolved: true, reason_code: 'not-asked', reason_note: 'Again' },
    );
    const rows = await list({ labId, userId: 7 }, '?is_resolved=true');
    expect(rows.find((row) => row.id === id)).toMatchObject({
      reason_code: 'not-asked',
      reason_note: 'Again',
    });
    expect(rows.find((row) => row.id === untouched)).toMatchObject({
      reason_code: 'masked',
      reason_note: null,
    });
  });

  it('writes one record per resolve call, whatever the number of rows', async () => {
    const labId = newLabId();
    const ids = await insertRows(
      t.db,
      Array.from({ length: 25 }, () => ({ labId })),
    );
    await patch({ labId, userId: 7 }, { ids, is_resolved: true, reason_code: 'asked-unknown' });
    const [count] = await t.db
      .em()
      .execute<Array<{ n: number | string }>>(
        'SELECT COUNT(*) AS n FROM md_manual_resolutions WHERE lab_id = ?',
        [labId],
      );
    expect(Number(count!.n)).toBe(1);
    expect([...(await records(ids)).values()].every((r) => r.reason_code === 'asked-unknown')).toBe(true);
  });

  it('does not take a row resolved by someone else at the same microsecond for a manual resolution', async () => {
    const labId = newLabId();
    const [byHand, byOther] = await insertRows(t.db, [{ labId }, { labId }]);
    await patch({ labId, userId: 7 }, { ids: [byHand], is_resolved: true, reason_code: 'masked' });
    // Legacy stamps the other row with the very same time, as another user.
    await t.db.em().execute(
      `UPDATE LabMissingDetails o JOIN LabMissingDetails h ON h.id = ?
SET o.is_resolved = 1, o.resolved_at = h.resolved_at, o.resolved_by_lab_user_id = 8 WHERE o.id = ?`,
      [byHand, byOther],
    );
    const rows = await list({ labId, userId: 7 }, '?is_resolved=true');
    expect(rows.find((row) => row.id === byHand)).toMatchObject({ reason_code: 'masked' });
    expect(rows.find((row) => row.id === byOther)).toMatchObject({ reason_code: null });
  });

  it('never shows a reason that belongs to an earlier resolution of a row resolved again elsewhere', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    await patch({ labId, userId: 7 }, { ids: [id], is_resolved: true, reason_code: 'not-applicable' });
    // Legacy (or anything but the service's resolve) stamps the row again without telling the service.
    await t.db
      .em()
      .execute("UPDATE LabMissingDetails SET resolved_at = '2030-01-01 00:00:00.000000' WHERE id = ?", [id]);
    const [row] = await list({ labId, userId: 7 }, '?is_resolved=true');
    expect(row).toMatchObject({ id, reason_code: null, reason_note: null });
  });

  it('writes the reason into the ActivityLog entry of the resolution', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    await patch(
      { labId, userId: 7 },
      { ids: [id], is_resolved: true, reason_code: 'masked', reason_note: 'Protected' },
    );
    const [entry] = await t.db
      .em()
      .execute<Array<{ message: string; details: string }>>(
        "SELECT message, details FROM ActivityLog WHERE lab_id = ? AND action = 'lab_fields_resolved'",
        [labId],
      );
    expect(entry!.message).toContain('(masked)');
    expect(JSON.parse(entry!.details)).toMatchObject({
      reason_code: 'masked',
      reason_note: 'Protected',
      updated_ids: [id],
    });
  });

  it('records nothing for rows outside the caller lab or organization', async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    const [mine, otherOrg, foreign] = await insertRows(t.db, [
      { labId, orgId: 9 },
      { labId, orgId: 10 },
      { labId: otherLab, orgId: 9 },
    ]);
    const res = await patch(
      { labId, userId: 7, orgId: 9 },
      { ids: [mine, otherOrg, foreign], is_resolved: true, reason_code: 'asked-declined' },
    );
    expect(res.json()).toEqual({ updated_count: 1 });
    const stored = await records([mine!, otherOrg!, foreign!]);
    expect([...stored.keys()]).toEqual([mine]);
    expect(stored.get(mine!)).toMatchObject({ reason_code: 'asked-declined' });
  });

  it('rejects an unknown reason code, a long note, and a reason on unresolving, naming the field', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ids: [id], is_resolved: true, reason_code: 'declined' }, 'reason_code'],
      [{ ids: [id], is_resolved: true, reason_code: 42 }, 'reason_code'],
      [{ ids: [id], is_resolved: true, reason_note: 'x'.repeat(501) }, 'reason_note'],
      [{ ids: [id], is_resolved: false, reason_code: 'asked-declined' }, 'reason_code'],
      [{ ids: [id], is_resolved: false, reason_note: 'why' }, 'reason_note'],
      [{ ids: [id], is_resolved: true, reasonCode: 'asked-declined' }, 'reasonCode'],
    ];
    for (const [body, path] of cases) {
      const res = await patch({ labId, userId: 7 }, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toMatchObject({
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path })],
      });
    }
    expect((await records([id!])).size).toBe(0);
    const [row] = await list({ labId, userId: 7 });
    expect(row).toMatchObject({ id, is_resolved: false });
  });

  it('accepts every FHIR data-absent-reason code and a note of exactly 500 characters', async () => {
    const labId = newLabId();
    const codes = [
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
    ];
    const ids = await insertRows(
      t.db,
      codes.map(() => ({ labId })),
    );
    for (const [i, code] of codes.entries()) {
      const res = await patch(
        { labId, userId: 7 },
        { ids: [ids[i]], is_resolved: true, reason_code: code, reason_note: 'n'.repeat(500) },
      );
      expect(res.statusCode, code).toBe(200);
    }
    const stored = await records(ids);
    expect(codes.map((_, i) => stored.get(ids[i]!)?.reason_code)).toEqual(codes);
  });
});

describe('tRPC labFields.resolve with a reason', () => {
  it('takes reasonCode and reasonNote and shows them in labFields.list of resolved rows', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    const res = await trpc({ labId, userId: 7 }, 'labFields.resolve', {
      ids: [id],
      isResolved: true,
      reasonCode: 'not-applicable',
      reasonNote: 'Walk-in, no referral',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().result.data).toEqual({ updatedCount: 1 });
    const page = (await trpc({ labId, userId: 7 }, 'labFields.list', { isResolved: true })).json().result
      .data;
    expect(page.results).toEqual([
      expect.objectContaining({ id, reasonCode: 'not-applicable', reasonNote: 'Walk-in, no referral' }),
    ]);
  });

  it('answers BAD_REQUEST with issues for a bad reason', async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    for (const [input, path] of [
      [{ ids: [id], isResolved: true, reasonCode: 'nope' }, 'reasonCode'],
      [{ ids: [id], isResolved: false, reasonNote: 'why' }, 'reasonNote'],
    ] as const) {
      const res = await trpc({ labId, userId: 7 }, 'labFields.resolve', input);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.data).toMatchObject({
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path })],
      });
    }
  });
});
