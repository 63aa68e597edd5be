/**
 * Comparable values (the seed's build_value_mapper): what a saved value is, for deciding whether it
 * is still a lab's placeholder.
 */
export type Comparable =
  | { readonly kind: 'absent' }
  /** A string (trimmed, lower-cased), a number as a decimal string, or a boolean. */
  | { readonly kind: 'text'; readonly text: string }
  /** An entity reference `{id, name}`; at least one of the two is set. */
  | { readonly kind: 'entity'; readonly id: number | null; readonly name: string | null }
  /** Something present that no placeholder can equal (a list, an object without id or name). */
  | { readonly kind: 'other' };

/** What a placeholder is for one config: its text, and the ids of the entities created for it. */
export interface Placeholder {
  readonly text: string;
  /** Every placeholder entity ever created for the config (renamed and older ones included). */
  readonly entityIds: ReadonlySet<number>;
}

const ABSENT: Comparable = { kind: 'absent' };
const OTHER: Comparable = { kind: 'other' };

function normalizeText(value: string): string {
  return value.trim().toLowerCase();
}

/** Numbers compare as plain decimal strings: 9800000000 is "9800000000", never "9.8e9". */
function decimalString(value: number): string {
  return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
}

function entityId(value: unknown): number | null {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  if (typeof value === 'string' && /^\s*[1-9]\d{0,15}\s*$/.test(value)) return Number(value);
  return null;
}

function entityName(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() === '' ? null : normalizeText(value);
  if (typeof value === 'number' && Number.isFinite(value)) return decimalString(value);
  return null;
}

/** Flattens one saved value. null, "", whitespace and `{id: null, name: ""}` are absent. */
export function toComparable(value: unknown): Comparable {
  if (value === null || value === undefined) return ABSENT;
  if (typeof value === 'string') {
    const text = normalizeText(value);
    return text === '' ? ABSENT : { kind: 'text', text };
  }
  if (typeof value === 'number')
    return Number.isFinite(value) ? { kind: 'text', text: decimalString(value) } : OTHER;
  if (typeof value === 'boolean') return { kind: 'text', text: String(value) };
  if (typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (!('id' in record) && !('name' in record)) return Object.keys(record).length === 0 ? ABSENT : OTHER;
    const id = entityId(record.id);
    const name = entityName(record.name);
    return id === null && name === null ? ABSENT : { kind: 'entity', id, name };
  }
  if (Array.isArray(value)) return value.length === 0 ? ABSENT : OTHER;
  return OTHER;
}

/**
 * True when a present value is the placeholder. An entity matches by id when both sides have ids
 * (so a renamed placeholder still matches, and an older one stays a placeholder); by name otherwise.
 */
export function equalsPlaceholder(value: Comparable, placeholder: Placeholder): boolean {
  const text = normalizeText(placeholder.text);
  switch (value.kind) {
    case 'text':
      return value.text === text;
    case 'entity':
      if (value.id !== null && placeholder.entityIds.size > 0) return placeholder.entityIds.has(value.id);
      return value.name !== null && value.name === text;
    default:
      return false;
  }
}

export function isPresent(value: Comparable): boolean {
  return value.kind !== 'absent';
}
