import type { MigrationObject } from '@mikro-orm/core';
import { Migration20260101000000LegacyTables } from './20260101000000-legacy-tables.js';
import { Migration20260101000100ServiceTables } from './20260101000100-service-tables.js';

/** Every reviewed migration, in order. Listed explicitly so tsx, vitest and compiled node load the same set. */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20260101000000LegacyTables', class: Migration20260101000000LegacyTables },
  { name: 'Migration20260101000100ServiceTables', class: Migration20260101000100ServiceTables },
];
