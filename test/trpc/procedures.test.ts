import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRouter } from '../../routers/app.router.js';
import { createContextInner } from '../../routers/context.js';
import type { Principal } from '../../src/auth/principal.js';
import { newLabId, seedOpenEmailRows, startTestApp, type TestApp } from '../support/fixtures.js';

// Procedures called in process, as tRPC's own starter tests them: `appRouter.createCaller` over
// `createContextInner`, no HTTP in between; the same deps as the running app.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

const staff = (labId: number): Principal => ({ labId, userId: 7, role: 'lab_user', orgId: null, via: 'jwt' });
const doctor = (labId: number): Principal => ({ labId, userId: 9, role: 'doctor', orgId: null, via: 'jwt' });
const callerAs = (principal: Principal | null) =>
  appRouter.createCaller(createContextInner({ deps: t.app.deps, principal }));

async function codeOf(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return (error as TRPCError).code;
}

describe('tRPC procedures called in process', () => {
  it("labFields.list answers the caller's open rows, newest first", async () => {
    const labId = newLabId();
    await seedOpenEmailRows(t.db, labId, [11, 12]);
    const page = await callerAs(staff(labId)).labFields.list({});
    expect(page.results.map((row) => row.userDetailsId).sort()).toEqual([11, 12]);
    expect(page.results.every((row) => !row.isResolved && row.fieldName === 'email')).toBe(true);
    expect(page.nextCursor).toBeNull();
  });

  it('labFields.resolve resolves the rows, which then leave the open list', async () => {
    const labId = newLabId();
    await seedOpenEmailRows(t.db, labId, [21]);
    const caller = callerAs(staff(labId));
    const [row] = (await caller.labFields.list({})).results;
    expect(await caller.labFields.resolve({ ids: [row!.id], isResolved: true })).toEqual({ updatedCount: 1 });
    expect((await caller.labFields.list({})).results).toEqual([]);
    expect((await caller.labFields.list({ isResolved: true })).results.map((r) => r.id)).toEqual([row!.id]);
  });

  it("configs.list answers the lab's configs (none for a new lab)", async () => {
    expect(await callerAs(staff(newLabId())).configs.list()).toEqual({ configs: [] });
  });

  it('answers UNAUTHORIZED to a call without a principal, before reading its input', async () => {
    expect(await codeOf(callerAs(null).labFields.list({ limit: -1 } as never))).toBe('UNAUTHORIZED');
    expect(await codeOf(callerAs(null).configs.list())).toBe('UNAUTHORIZED');
  });

  it('answers FORBIDDEN to a doctor saving configs', async () => {
    const call = callerAs(doctor(newLabId())).configs.save({ configs: [] } as never);
    expect(await codeOf(call)).toBe('FORBIDDEN');
  });
});
