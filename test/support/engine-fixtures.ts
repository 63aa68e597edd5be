import type { Principal } from '../../src/auth/principal.js';
import type { Em } from '../../src/db/database.js';
import { dbTimestampOf } from '../../src/db/microsecond-timestamp.type.js';
import {
  LabMissingDetailsConfiguration,
  MissingDetailsEntityCreation,
  MissingDetailsTemplate,
} from '../../src/entities/index.js';

/** The production catalog's template ids (migrations seed it). */
export const FIELD = {
  email: 1,
  mobile: 2,
  dob: 3,
  address: 4,
  referral_doctor: 5,
  organization: 6,
  insurance: 7,
  group: 8,
  sample_collector: 9,
  passport_no: 10,
} as const;
export type FieldName = keyof typeof FIELD;

export function principalFor(
  labId: number,
  options: { userId?: number; role?: Principal['role']; orgId?: number | null } = {},
): Principal {
  return {
    labId,
    userId: options.userId ?? 7,
    role: options.role ?? 'lab_user',
    orgId: options.orgId ?? null,
    via: 'jwt',
  };
}

export interface ConfigSeed {
  field: FieldName;
  value: string;
  disabled?: boolean;
  /** The config's `entity_object_id`. */
  entityObjectId?: number | null;
  /** Object ids of MissingDetailsEntityCreation rows for the config, oldest first. */
  createdEntityIds?: number[];
}

/** Writes a lab's configs (and their entity creation traces) directly, as a config save would leave them. */
export async function seedConfigs(em: Em, labId: number, seeds: readonly ConfigSeed[]): Promise<number[]> {
  const now = new Date();
  const ids: number[] = [];
  for (const seed of seeds) {
    const template = await em.findOneOrFail(MissingDetailsTemplate, { id: FIELD[seed.field] });
    const configId = (await em.insert(LabMissingDetailsConfiguration, {
      labId,
      fieldId: template.id,
      fieldName: template.name,
      fieldValue: seed.value,
      fieldModule: template.module,
      fieldCategory: template.category,
      entityObjectId: seed.entityObjectId ?? seed.createdEntityIds?.at(-1) ?? null,
      isDisabled: seed.disabled ?? false,
      createdAt: dbTimestampOf(now),
      updatedAt: dbTimestampOf(now),
    })) as number;
    for (const objectId of seed.createdEntityIds ?? []) {
      await em.insert(MissingDetailsEntityCreation, {
        configId,
        entityName: template.entityType ?? template.name,
        objectId,
        labId,
        orgId: null,
        createdAt: now,
      });
    }
    ids.push(configId);
  }
  return ids;
}

export interface RowView {
  id: number;
  user_details_id: number;
  bill_id: number | null;
  org_id: number | null;
  field_id: number;
  field_name: string;
  field_value: string;
  field_module: string;
  config_id: number | null;
  is_resolved: number;
  resolved_at: string | null;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
  created_at: string;
  updated_at: string;
}

/** Every LabMissingDetails row of a lab, oldest first. */
export function rowsOf(em: Em, labId: number): Promise<RowView[]> {
  return em.execute<RowView[]>(
    `SELECT id, user_details_id, bill_id, org_id, field_id, field_name, field_value, field_module, config_id,
  is_resolved, resolved_at, resolved_by_doctor_id, resolved_by_lab_user_id, created_at, updated_at
FROM LabMissingDetails WHERE lab_id = ? ORDER BY id`,
    [labId],
  );
}

/** Statement counters of the connection `em` is bound to (use inside a transaction: one connection). */
export async function statementCounts(em: Em): Promise<{ selects: number; writes: number }> {
  const rows = await em.execute<Array<{ Variable_name: string; Value: string }>>(
    "SHOW SESSION STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_insert_select', 'Com_update_multi', 'Com_replace')",
  );
  let selects = 0;
  let writes = 0;
  for (const row of rows) {
    if (row.Variable_name === 'Com_select') selects += Number(row.Value);
    else writes += Number(row.Value);
  }
  return { selects, writes };
}
