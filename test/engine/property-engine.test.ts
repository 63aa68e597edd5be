import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptureInput, captureInTransaction } from '../../src/services/capture.service.js';
import { resolveLabFields } from '../../src/services/lab-fields.service.js';
import {
  newLabId,
  principalFor,
  type RowView,
  rowsOf,
  seedConfigs,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);

const PLACEHOLDERS = { email: 'noemail@lab.in', mobile: '0000000000', address: 'NA', sample_collector: 'NA' };

/** A value for one key: the placeholder (as typed by someone else), a real value, or absent-like. */
const valueFor = (placeholder: string) =>
  fc.oneof(
    fc.constant(placeholder),
    fc.constant(` ${placeholder.toUpperCase()} `),
    fc.constantFrom('real.value@example.com', '9800000000', '12 MG Road'),
    fc.constantFrom(null, '', '   '),
  );
const patientValues = fc.record(
  {
    email: valueFor(PLACEHOLDERS.email),
    mobile: valueFor(PLACEHOLDERS.mobile),
    address: valueFor(PLACEHOLDERS.address),
  },
  { requiredKeys: [] },
);
const billValues = fc.record(
  { sample_collector: valueFor(PLACEHOLDERS.sample_collector) },
  { requiredKeys: [] },
);
const capture = fc.oneof(
  patientValues.map((values) => ({ module: 'patient' as const, billId: null, values })),
  billValues.map((values) => ({ module: 'bill' as const, billId: 77, values })),
);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function newLab(): Promise<number> {
  const labId = newLabId();
  await seedConfigs(
    t.db.em(),
    labId,
    Object.entries(PLACEHOLDERS).map(([field, value]) => ({ field: field as 'email', value })),
  );
  return labId;
}

function run(labId: number, c: Omit<CaptureInput, 'userDetailsId' | 'orgId'>) {
  return captureInTransaction(t.db.em(), principalFor(labId), { ...c, userDetailsId: 55, orgId: null });
}

/** What a lab's rows say, without ids and times: a multiset of (field, bill, value, resolved). */
function stateOf(rows: RowView[]): string[] {
  return rows.map((r) => `${r.field_id}|${r.bill_id}|${r.field_value}|${r.is_resolved}`).sort();
}

describe('engine properties', () => {
  it('changes nothing when the same capture runs a second time', async () => {
    await fc.assert(
      fc.asyncProperty(capture, capture, async (earlier, repeated) => {
        const labId = await newLab();
        await run(labId, earlier);
        await run(labId, repeated);
        const once = await rowsOf(t.db.em(), labId);
        await run(labId, repeated);
        expect(await rowsOf(t.db.em(), labId)).toEqual(once);
      }),
      { numRuns: 40, seed: SEED },
    );
  });

  it('restores every row when a resolve is followed by an unresolve', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(capture, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('lab_user' as const, 'doctor' as const),
        async (captures, role) => {
          const labId = await newLab();
          for (const c of captures) await run(labId, c);
          const before = await rowsOf(t.db.em(), labId);
          const open = before.filter((r) => !r.is_resolved).map((r) => r.id);
          fc.pre(open.length > 0);
          const principal = principalFor(labId, { role, userId: 9 });
          await resolveLabFields(t.db.em(), principal, { ids: open, isResolved: true });
          await resolveLabFields(t.db.em(), principal, { ids: open, isResolved: false });
          const keep = ({ updated_at: _u, ...row }: RowView) => row;
          expect((await rowsOf(t.db.em(), labId)).map(keep)).toEqual(before.map(keep));
        },
      ),
      { numRuns: 30, seed: SEED },
    );
  });

  it('ends captures that race in the state of some serial order', async () => {
    const permutations = <T>(items: T[]): T[][] =>
      items.length <= 1
        ? [items]
        : items.flatMap((item, i) =>
            permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
          );
    await fc.assert(
      fc.asyncProperty(fc.array(capture, { minLength: 2, maxLength: 3 }), async (captures) => {
        const raced = await newLab();
        await Promise.all(captures.map((c) => run(raced, c)));
        const racedState = stateOf(await rowsOf(t.db.em(), raced));
        const serialStates: string[][] = [];
        for (const order of permutations(captures)) {
          const labId = await newLab();
          for (const c of order) await run(labId, c);
          serialStates.push(stateOf(await rowsOf(t.db.em(), labId)));
        }
        expect(serialStates).toContainEqual(racedState);
      }),
      { numRuns: 12, seed: SEED },
    );
  });
});
