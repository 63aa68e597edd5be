import type { AddressInfo } from 'node:net';
import type { Database } from '../../src/db/database.js';
import { LabMissingDetails } from '../../src/entities/index.js';
import type { TestApp } from './harness.js';

/** Makes the test app listen on a free loopback port, for clients that speak real HTTP. */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

/** Open missing-email rows of a lab, one per patient, as captures would leave them. */
export async function seedOpenEmailRows(
  db: Database,
  labId: number,
  patients: readonly number[],
): Promise<void> {
  const now = new Date();
  const em = db.em();
  for (const userDetailsId of patients) {
    await em.insert(LabMissingDetails, {
      labId,
      orgId: null,
      userDetailsId,
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
  }
}
