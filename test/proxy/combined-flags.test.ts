import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdReadBatches, type IdReader } from '../../src/db/id-read-batches.js';
import { sqlSession } from '../../src/db/sql-session.js';
import { patientsWithOpenRows } from '../../src/repositories/flags.repository.js';
import { combinedPatientFlags, patientFlags } from '../../src/services/flags.service.js';
import { insertRows, newLabId, principalFor, startTestApp, type TestApp } from '../support/fixtures.js';

/**
 * The proxy's flagged answers read open patients through IdReadBatches: concurrent reads of one scope
 * share a statement, and no caller is answered from a read that started before it arrived.
 */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

let nextPatient = 8_000_000 + Math.floor(Math.random() * 1_000_000) * 10;
const patients = (count: number) => Array.from({ length: count }, () => nextPatient++);

/** The real flags statement for `labId`, held open for `holdMs` after it answered, with each read's ids kept. */
function slowReader(labId: number, reads: number[][], holdMs = 300): IdReader {
  return async (ids) => {
    reads.push([...ids].sort());
    const open = await patientsWithOpenRows(sqlSession(t.db.rootEm()), principalFor(labId), ids);
    await t.db.em().execute(`SELECT SLEEP(${holdMs / 1000})`);
    return open;
  };
}

async function openRowsFor(labId: number, userDetailsIds: number[], orgId: number | null = null) {
  await insertRows(
    t.db,
    userDetailsIds.map((userDetailsId) => ({ labId, orgId, userDetailsId })),
  );
}

describe('combined flag reads', () => {
  it('answer a lone caller at once, as the uncombined read does', async () => {
    const labId = newLabId();
    const [open, closed] = patients(2) as [number, number];
    await openRowsFor(labId, [open]);
    const combined = await combinedPatientFlags(t.db, principalFor(labId), [open, closed]);
    const plain = await patientFlags(t.db.em(), principalFor(labId), [open, closed]);
    expect([...combined]).toEqual([...plain]);
    expect(combined.get(open)).toBe(true);
    expect(combined.get(closed)).toBe(false);
  });

  it('read the callers that arrive during a read together in the next one, each getting only its own ids', async () => {
    const labId = newLabId();
    const ids = patients(11);
    await openRowsFor(
      labId,
      ids.filter((_, i) => i % 2 === 0),
    );
    const batches = new IdReadBatches({ maxIdsPerRead: 1_000, readTimeoutMs: 5_000 });
    const reads: number[][] = [];
    const reader = slowReader(labId, reads);
    const first = batches.read(`${labId}`, ids.slice(0, 1), reader);
    await sleep(50);
    const groups = [ids.slice(1, 3), ids.slice(3, 6), ids.slice(6, 11), ids.slice(1, 2)];
    const later = await Promise.all(groups.map((group) => batches.read(`${labId}`, group, reader)));

    expect(await first).toEqual(new Set([ids[0]]));
    expect(reads).toEqual([[ids[0]], ids.slice(1).sort()]);
    groups.forEach((group, i) => {
      expect([...later[i]!].sort()).toEqual(group.filter((id) => (id - ids[0]!) % 2 === 0).sort());
    });
  });

  it('never answer a caller from a read that started before it arrived', async () => {
    const labId = newLabId();
    const [patient] = patients(1) as [number];
    const batches = new IdReadBatches({ maxIdsPerRead: 1_000, readTimeoutMs: 5_000 });
    const reads: number[][] = [];
    const reader = slowReader(labId, reads);
    const before = batches.read(`${labId}`, [patient], reader);
    await sleep(100); // the first read answered and is held
    await openRowsFor(labId, [patient]);
    const after = batches.read(`${labId}`, [patient], reader);

    expect(await before).toEqual(new Set());
    expect(await after).toEqual(new Set([patient]));
    expect(reads).toHaveLength(2);
  });

  it('keep each read within the id limit, taking waiting callers in arrival order', async () => {
    const labId = newLabId();
    const ids = patients(7);
    const batches = new IdReadBatches({ maxIdsPerRead: 3, readTimeoutMs: 5_000 });
    const reads: number[][] = [];
    const reader = slowReader(labId, reads, 100);
    const calls = [ids.slice(0, 1), ids.slice(1, 3), ids.slice(3, 4), ids.slice(4, 7)].map((group) =>
      batches.read(`${labId}`, group, reader),
    );
    await Promise.all(calls);
    // All four arrive in one turn of the event loop: the first read takes as many as fit, in order.
    expect(reads).toEqual([ids.slice(0, 3).sort(), ids.slice(3, 4), ids.slice(4, 7).sort()]);
  });

  it("fail only the failed read's callers; the callers waiting behind it are read next", async () => {
    const labId = newLabId();
    const [patient] = patients(1) as [number];
    await openRowsFor(labId, [patient]);
    const batches = new IdReadBatches({ maxIdsPerRead: 1_000, readTimeoutMs: 5_000 });
    const failing: IdReader = async () => {
      await t.db.em().execute('SELECT SLEEP(0.2)');
      return t.db.em().execute('SELECT id FROM md_no_such_table');
    };
    const failed = batches.read(`${labId}`, [patient], failing);
    const failedExpectation = expect(failed).rejects.toThrow(/md_no_such_table/);
    await sleep(50);
    const next = batches.read(`${labId}`, [patient], slowReader(labId, [], 0));
    await failedExpectation;
    expect(await next).toEqual(new Set([patient]));
  });

  it('fail a read that does not answer in time, and read the callers behind it without waiting for it', async () => {
    const labId = newLabId();
    const [patient] = patients(1) as [number];
    await openRowsFor(labId, [patient]);
    const batches = new IdReadBatches({ maxIdsPerRead: 1_000, readTimeoutMs: 300 });
    const stuck: IdReader = async () => {
      await t.db.em().execute('SELECT SLEEP(3)');
      return [patient];
    };
    const started = Date.now();
    const late = batches.read(`${labId}`, [patient], stuck);
    const lateExpectation = expect(late).rejects.toThrow(/did not answer within 300 ms/);
    await sleep(50);
    const next = batches.read(`${labId}`, [patient], slowReader(labId, [], 0));
    await lateExpectation;
    expect(await next).toEqual(new Set([patient]));
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it("keep scopes apart: an organization's caller and a lab-wide caller at once each see their own scope", async () => {
    const labId = newLabId();
    const [inOrg9, inOrg10, noOrg] = patients(3) as [number, number, number];
    await openRowsFor(labId, [inOrg9], 9);
    await openRowsFor(labId, [inOrg10], 10);
    await openRowsFor(labId, [noOrg]);
    const all = [inOrg9, inOrg10, noOrg];
    const [labWide, org9, org10] = await Promise.all([
      combinedPatientFlags(t.db, principalFor(labId), all),
      combinedPatientFlags(t.db, principalFor(labId, { orgId: 9 }), all),
      combinedPatientFlags(t.db, principalFor(labId, { orgId: 10 }), all),
    ]);
    expect(all.map((id) => labWide.get(id))).toEqual([true, true, true]);
    expect(all.map((id) => org9.get(id))).toEqual([true, false, false]);
    expect(all.map((id) => org10.get(id))).toEqual([false, true, false]);
  });
});
