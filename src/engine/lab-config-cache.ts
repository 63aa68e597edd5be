import { isJunk } from './junk-values.js';
import type { Comparable, Placeholder } from './value-mapper.js';

/** One config as the engine compares against it: its placeholder, and whether it opens rows. */
export interface PlaceholderConfig extends Placeholder {
  readonly id: number;
  readonly fieldId: number;
  readonly module: string;
  readonly templateName: string;
  /** Opens rows: the config is enabled and its template active. */
  readonly active: boolean;
  /** The template's input type ('text', 'email', 'phone', 'date', 'entity'): which junk rules apply. */
  readonly inputType: string;
  /** Rows opened under the config are due this many hours after opening; null: no due time. */
  readonly dueInHours: number | null;
}

/** A lab's settings as capture and the placeholder check read them (md_lab_settings; no row: defaults). */
export interface LabSettingsRow {
  junk_detection: number;
  /** JSON text `{"<field_name>": ["value", …]}`. */
  extra_junk_values: string;
}

/** One config row joined with its template and (LEFT JOIN) one of its entity creations. */
export interface LabConfigRow {
  id: number;
  field_id: number;
  field_value: string;
  is_disabled: number;
  entity_object_id: number | null;
  template_name: string;
  template_module: string;
  template_active: number;
  creation_object_id: number | null;
  input_type: string;
  due_in_hours: number | null;
}

function extraJunkOf(settings: LabSettingsRow | undefined): Map<string, Set<string>> {
  const extra = new Map<string, Set<string>>();
  if (!settings) return extra;
  const parsed = JSON.parse(settings.extra_junk_values || '{}') as Record<string, string[]>;
  for (const [field, values] of Object.entries(parsed)) {
    extra.set(field, new Set(values.map((value) => value.trim().toLowerCase())));
  }
  return extra;
}

const NO_VALUES: ReadonlySet<string> = new Set();

/**
 * Every config of one lab (disabled ones too: an open row still resolves against the config that
 * detected it), as of one config version.
 */
export class LabConfigs {
  readonly #byId: ReadonlyMap<number, PlaceholderConfig>;
  /** Per module, the config that opens rows for each field (the newest active one). */
  readonly #openingByModule: ReadonlyMap<string, readonly PlaceholderConfig[]>;
  /** Junk detection is on for the lab (off by default: old clients see what they saw). */
  readonly junkDetection: boolean;
  readonly #extraJunk: ReadonlyMap<string, ReadonlySet<string>>;

  constructor(rows: readonly LabConfigRow[], settings?: LabSettingsRow) {
    this.junkDetection = Boolean(Number(settings?.junk_detection ?? 0));
    this.#extraJunk = extraJunkOf(settings);
    const entityIdsById = new Map<number, Set<number>>();
    const first = new Map<number, LabConfigRow>();
    for (const row of rows) {
      let entityIds = entityIdsById.get(row.id);
      if (!entityIds) {
        entityIds = new Set();
        entityIdsById.set(row.id, entityIds);
        first.set(row.id, row);
        if (row.entity_object_id !== null) entityIds.add(row.entity_object_id);
      }
      if (row.creation_object_id !== null) entityIds.add(row.creation_object_id);
    }
    const byId = new Map<number, PlaceholderConfig>();
    const openingByField = new Map<string, PlaceholderConfig>();
    for (const [id, row] of first) {
      const config: PlaceholderConfig = {
        id,
        fieldId: row.field_id,
        module: row.template_module,
        templateName: row.template_name,
        text: row.field_value,
        active: !Number(row.is_disabled) && Boolean(Number(row.template_active)),
        entityIds: entityIdsById.get(id)!,
        inputType: row.input_type,
        dueInHours: row.due_in_hours === null ? null : Number(row.due_in_hours),
      };
      byId.set(id, config);
      const slot = `${config.module}\u0000${config.fieldId}`;
      const seen = openingByField.get(slot);
      if (config.active && (!seen || seen.id < config.id)) openingByField.set(slot, config);
    }
    const openingByModule = new Map<string, PlaceholderConfig[]>();
    for (const config of openingByField.values()) {
      const list = openingByModule.get(config.module) ?? [];
      list.push(config);
      openingByModule.set(config.module, list);
    }
    this.#byId = byId;
    this.#openingByModule = openingByModule;
  }

  byId(id: number): PlaceholderConfig | undefined {
    return this.#byId.get(id);
  }

  /** The configs that open rows for the module's fields, one per field. */
  opening(module: string): readonly PlaceholderConfig[] {
    return this.#openingByModule.get(module) ?? [];
  }

  /** Whether `value` is junk for the config's field: never while the lab has junk detection off. */
  isJunk(value: Comparable, config: PlaceholderConfig, today: string): boolean {
    if (!this.junkDetection) return false;
    const extraValues = this.#extraJunk.get(config.templateName) ?? NO_VALUES;
    return isJunk(value, { inputType: config.inputType, extraValues, today });
  }
}

export const NO_CONFIGS = new LabConfigs([]);

/** A lab's configs as of one config state (the version, then a fingerprint of the rows). */
export interface CachedLabConfigs {
  readonly version: string;
  readonly configs: LabConfigs;
}

const versionOf = (state: string) => Number(state.split(':', 1)[0]);

/** How many labs one instance keeps; a lab's entry is a few hundred bytes per config. */
export const DEFAULT_LAB_CONFIG_CACHE_SIZE = 5_000;

/**
 * Each instance's copy of its labs' configs, keyed by the lab's config version (see
 * `md_lab_config_versions`). The engine reads the current version in the capture's own statement
 * and uses an entry only when the two are equal, so a save on any instance invalidates it at once,
 * with no time-to-live and no broadcast. Least recently used labs are evicted past `maxLabs`.
 */
export class LabConfigCache {
  readonly #entries = new Map<number, CachedLabConfigs>();
  readonly #maxLabs: number;

  constructor(maxLabs = DEFAULT_LAB_CONFIG_CACHE_SIZE) {
    this.#maxLabs = maxLabs;
  }

  /** What this instance holds for the lab, whatever its version; undefined when nothing. */
  lookup(labId: number): CachedLabConfigs | undefined {
    const entry = this.#entries.get(labId);
    if (entry) {
      // Re-inserting keeps the Map's order least recently used first.
      this.#entries.delete(labId);
      this.#entries.set(labId, entry);
    }
    return entry;
  }

  store(labId: number, version: string, configs: LabConfigs): void {
    // Versions only grow: a capture whose snapshot is older than the entry's leaves it alone. (A
    // state with the same version and another fingerprint replaces it: the entry is only ever used
    // when its state equals the one the capture just read.)
    const held = this.#entries.get(labId);
    if (held && versionOf(held.version) > versionOf(version)) return;
    this.#entries.delete(labId);
    this.#entries.set(labId, { version, configs });
    while (this.#entries.size > this.#maxLabs) {
      const oldest = this.#entries.keys().next().value as number;
      this.#entries.delete(oldest);
    }
  }

  /**
   * The configs as of a state just read: the held entry when it is that state, else the ones built
   * from the read's rows (kept for the next caller).
   */
  adopt(
    labId: number,
    held: CachedLabConfigs | undefined,
    read: { version: string; configRows: readonly LabConfigRow[]; settings: LabSettingsRow | undefined },
  ): LabConfigs {
    if (held && held.version === read.version) return held.configs;
    const configs = new LabConfigs(read.configRows, read.settings);
    this.store(labId, read.version, configs);
    return configs;
  }

  get size(): number {
    return this.#entries.size;
  }
}
