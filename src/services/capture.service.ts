import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../auth/principal.js';
import type { Database, Em } from '../db/database.js';
import type { FieldModule } from './templates.service.js';

/** One save of a patient (module `patient`) or a bill (module `bill`), keyed like the legacy bodies. */
export interface CaptureInput {
  module: FieldModule;
  userDetailsId: number;
  /** Set for module `bill`; null for `patient`. */
  billId: number | null;
  /** The patient's organization (null when none). */
  orgId: number | null;
  values: Record<string, unknown>;
}

export interface CaptureResult {
  opened: number;
  resolved: number;
  /** After this capture: for a patient, any unresolved row of the patient; for a bill, of the bill or its patient. */
  hasMissingFields: boolean;
}

/** The runtime engine: opens and resolves LabMissingDetails rows for one save (contract: "The runtime engine"). */
export async function capture(_em: Em, _principal: Principal, _input: CaptureInput): Promise<CaptureResult> {
  throw new Error('not implemented yet');
}

/**
 * Runs `capture` in its own transaction. When it fails, the capture is stored durably for the
 * retrier (it is never dropped), the failure is logged and counted, and `null` is returned.
 * Never throws: the proxy calls it after legacy has already answered.
 */
export async function captureDurably(
  _db: Database,
  _principal: Principal,
  _input: CaptureInput,
  _log: FastifyBaseLogger,
): Promise<CaptureResult | null> {
  throw new Error('not implemented yet');
}
