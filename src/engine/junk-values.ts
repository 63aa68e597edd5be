import type { Comparable } from './value-mapper.js';

/**
 * Junk: a value that is not the lab's placeholder but is not real either (contract "Additions",
 * work queue). Checked by the template's input type; text rules apply to every type. Pure: the
 * lab's own extra values and today's date come in as arguments.
 */

/** Text that stands for "nothing" whatever the field (compared trimmed and lower-cased). */
export const JUNK_TEXTS: ReadonlySet<string> = new Set([
  'na',
  'n/a',
  'n.a.',
  'nil',
  'null',
  'none',
  'unknown',
  'not available',
  'not known',
  '-',
  '--',
  '.',
  '..',
  '0',
  'x',
  'xx',
  'xxx',
]);

/** Local parts front desks type when a patient has no email. */
export const DUMMY_EMAIL_LOCAL_PARTS: ReadonlySet<string> = new Set([
  'noemail',
  'no-email',
  'no_email',
  'nomail',
  'none',
  'na',
  'nil',
  'test',
  'dummy',
  'abc',
  'xyz',
  'example',
  'noreply',
  'no-reply',
  'unknown',
]);

/** RFC 2606 / 6761 reserved names: never a patient's mailbox. */
const RESERVED_EMAIL_DOMAIN = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[a-z]{2,}$/;
const STRAIGHT_RUNS = '01234567890123456789';
const STRAIGHT_RUNS_DOWN = '98765432109876543210';
const PLACEHOLDER_BIRTH_DATES: ReadonlySet<string> = new Set(['1900-01-01', '1901-01-01']);
const DAY_FIRST_DATE = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/;
const ISO_DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})(?:$|[t\s])/;

export function isJunkPhone(text: string): boolean {
  const digits = text.replace(/[\s\-().+/]/g, '');
  if (!/^\d+$/.test(digits)) return true;
  if (digits.length < 7) return true;
  if (/^(\d)\1+$/.test(digits)) return true;
  return STRAIGHT_RUNS.includes(digits) || STRAIGHT_RUNS_DOWN.includes(digits);
}

export function isJunkEmail(text: string): boolean {
  if (!EMAIL.test(text)) return true;
  const at = text.lastIndexOf('@');
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  return DUMMY_EMAIL_LOCAL_PARTS.has(local) || RESERVED_EMAIL_DOMAIN.test(domain);
}

/** `YYYY-MM-DD` of a date as a front desk types it (ISO, or day first), or null when it is not one. */
function isoDateOf(text: string): string | null {
  const iso = ISO_DATE_PREFIX.exec(text);
  if (iso) return `${iso[1]}-${iso[2]}-${iso[3]}`;
  const dayFirst = DAY_FIRST_DATE.exec(text);
  if (!dayFirst) return null;
  const [, day, month, year] = dayFirst as unknown as [string, string, string, string];
  return `${year}-${month.padStart(2, '0')}-${day.padStart(2, '0')}`;
}

/** 1900-01-01, 1901-01-01, or after `today` (`YYYY-MM-DD`, UTC). Text that is no date is not judged. */
export function isJunkBirthDate(text: string, today: string): boolean {
  const date = isoDateOf(text);
  return date !== null && (PLACEHOLDER_BIRTH_DATES.has(date) || date > today);
}

export interface JunkRules {
  /** The template's input type: 'text' | 'email' | 'phone' | 'date' | 'entity'. */
  inputType: string;
  /** The lab's own junk values for the field, trimmed and lower-cased. */
  extraValues: ReadonlySet<string>;
  /** Today as `YYYY-MM-DD` (UTC), for dates in the future. */
  today: string;
}

/** Whether a present saved value is junk for its field. Entities are junk only by the lab's own values. */
export function isJunk(value: Comparable, rules: JunkRules): boolean {
  if (value.kind === 'entity') return value.name !== null && rules.extraValues.has(value.name);
  if (value.kind !== 'text') return false;
  const text = value.text;
  if (rules.extraValues.has(text) || JUNK_TEXTS.has(text)) return true;
  switch (rules.inputType) {
    case 'phone':
      return isJunkPhone(text);
    case 'email':
      return isJunkEmail(text);
    case 'date':
      return isJunkBirthDate(text, rules.today);
    default:
      return false;
  }
}

/** Today's date in UTC as `YYYY-MM-DD`. */
export const utcDay = (now: Date): string => now.toISOString().slice(0, 10);
