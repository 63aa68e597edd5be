import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionSource, sqlSession } from '../../src/db/sql-session.js';
import { LabMissingDetails } from '../../src/entities/index.js';
import { toAppError } from '../../src/errors.js';
import { labFieldsPageQuery } from '../../src/repositories/lab-fields.repository.js';
import { newLabId, seedOpenEmailRows, startTestApp, type TestApp } from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const principal = (labId: number) =>
  ({ labId, userId: 7, role: 'lab_user', orgId: null, via: 'jwt' }) as const;

/** The rows of one statement through a session on `em`. */
const selectRows = (em: SessionSource, sql: string, params: unknown[]) => sqlSession(em).query(sql, params);

describe("a session's query", () => {
  it('returns exactly the rows em.execute returns, through the root reader as through a fork', async () => {
    const labId = newLabId();
    await seedOpenEmailRows(t.db, labId, [11, 12, 13]);
    const { sql, params } = labFieldsPageQuery(principal(labId), { isResolved: false, limit: 2 });
    const expected = await t.db.em().execute(sql, params);
    expect(expected).toHaveLength(3);
    expect(await selectRows(t.db.rootEm(), sql, params)).toEqual(expected);
    expect(await selectRows(t.db.em(), sql, params)).toEqual(expected);
  });

  it("reads inside the caller's transaction, seeing its uncommitted rows", async () => {
    const labId = newLabId();
    const { sql, params } = labFieldsPageQuery(principal(labId), { isResolved: false, limit: 5 });
    const rolledBack = new Error('roll back');
    const outcome = t.db.em().transactional(async (tx) => {
      const now = new Date();
      await tx.insert(LabMissingDetails, {
        labId,
        orgId: null,
        userDetailsId: 21,
        billId: null,
        fieldId: 1,
        configId: null,
        fieldName: 'email',
        fieldValue: 'noemail@lab.in',
        fieldModule: 'patient',
        isResolved: false,
        createdAt: now,
        updatedAt: now,
      });
      expect(await selectRows(tx, sql, params)).toHaveLength(1);
      throw rolledBack;
    });
    await expect(outcome).rejects.toBe(rolledBack);
    expect(await selectRows(t.db.rootEm(), sql, params)).toHaveLength(0);
  });

  it("writes inside the caller's transaction with the caller's values, and refuses a statement once it has committed", async () => {
    const labId = newLabId();
    const { sql, params } = labFieldsPageQuery(principal(labId), { isResolved: false, limit: 5 });
    let session: ReturnType<typeof sqlSession> | undefined;
    await t.db.em().transactional(async (tx) => {
      session = sqlSession(tx);
      const written = await session.execute(
        `INSERT INTO LabMissingDetails (lab_id, user_details_id, field_id, field_name, field_value, field_module,
           is_resolved, created_at, updated_at) VALUES (?, ?, 1, 'email', ?, 'patient', 0, ?, ?)`,
        [labId, 22, 'noemail@lab.in', new Date(), new Date()],
      );
      expect(written.affectedRows).toBe(1);
    });
    expect(await selectRows(t.db.rootEm(), sql, params)).toMatchObject([
      { user_details_id: 22, field_value: 'noemail@lab.in' },
    ]);
    await expect(session!.query(sql, params)).rejects.toThrow(/complete/);
  });

  it('rejects with the driver error, which the error table maps like any other', async () => {
    const failure = await selectRows(t.db.rootEm(), 'SELECT nope FROM nowhere_at_all', []).catch((e) => e);
    expect(failure).toMatchObject({ code: 'ER_NO_SUCH_TABLE' });
    expect(toAppError(failure).code).toBe('INTERNAL_SERVER_ERROR');
  });
});
