import type { MigrationObject } from '@mikro-orm/core';
import { Migration20260101000000LegacyTables } from './20260101000000-legacy-tables.js';
import { Migration20260101000100ServiceTables } from './20260101000100-service-tables.js';
import { Migration20260102000000OpenRowGuard } from './20260102000000-open-row-guard.js';
import { Migration20260102000100LabFieldsListIndex } from './20260102000100-lab-fields-list-index.js';
import { Migration20260102000200BridgeRetries } from './20260102000200-bridge-retries.js';
import { Migration20260102000201BridgeConfigIndex } from './20260102000201-bridge-config-index.js';
import { Migration20260103000000ResolutionReasons } from './20260103000000-resolution-reasons.js';
import { Migration20260104000000LabConfigVersions } from './20260104000000-lab-config-versions.js';
import { Migration20260105000000ManualResolutions } from './20260105000000-manual-resolutions.js';
import { Migration20260106000000DropLabFieldResolutions } from './20260106000000-drop-lab-field-resolutions.js';
import { Migration20260107000000WorkQueue } from './20260107000000-work-queue.js';

/** Every reviewed migration, in order. Listed explicitly so tsx, vitest and compiled node load the same set. */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20260101000000LegacyTables', class: Migration20260101000000LegacyTables },
  { name: 'Migration20260101000100ServiceTables', class: Migration20260101000100ServiceTables },
  { name: 'Migration20260102000000OpenRowGuard', class: Migration20260102000000OpenRowGuard },
  { name: 'Migration20260102000100LabFieldsListIndex', class: Migration20260102000100LabFieldsListIndex },
  { name: 'Migration20260102000200BridgeRetries', class: Migration20260102000200BridgeRetries },
  { name: 'Migration20260103000000ResolutionReasons', class: Migration20260103000000ResolutionReasons },
  { name: 'Migration20260102000201BridgeConfigIndex', class: Migration20260102000201BridgeConfigIndex },
  { name: 'Migration20260104000000LabConfigVersions', class: Migration20260104000000LabConfigVersions },
  { name: 'Migration20260105000000ManualResolutions', class: Migration20260105000000ManualResolutions },
  {
    name: 'Migration20260106000000DropLabFieldResolutions',
    class: Migration20260106000000DropLabFieldResolutions,
  },
  { name: 'Migration20260107000000WorkQueue', class: Migration20260107000000WorkQueue },
];
