import { isPlainObject } from './legacy-augmentation.js';

const FLAG = 'has_missing_fields';

/**
 * Legacy's JSON answer plus `"has_missing_fields"`, with every other byte as legacy sent it: the
 * field is spliced in before the object's closing brace, so numbers like `250.0`, big integers,
 * escapes and key order reach the client untouched. Falls back to re-serializing when the text
 * cannot be spliced safely (for instance when legacy already sent the field).
 */
export function withFlag(text: string, answer: Record<string, unknown>, value: boolean): string {
  const close = closingBrace(text);
  if (close === undefined || FLAG in answer) return JSON.stringify({ ...answer, [FLAG]: value });
  return splice(text, [{ at: close, empty: Object.keys(answer).length === 0, value }]);
}

/**
 * Legacy's JSON answer with `"has_missing_fields"` added to each object item of its top-level
 * array `key` whose flag is defined (items without a flag keep legacy's shape).
 */
export function withItemFlags(
  text: string,
  answer: Record<string, unknown>,
  key: string,
  flags: ReadonlyArray<boolean | undefined>,
): string {
  const items = answer[key];
  if (!Array.isArray(items)) return text;
  const fallback = () =>
    JSON.stringify({
      ...answer,
      [key]: items.map((item, i) =>
        flags[i] === undefined || !isPlainObject(item) ? item : { ...item, [FLAG]: flags[i] },
      ),
    });
  const ends = objectItemEnds(text, key);
  const objectItems = items.flatMap((item, index) => (isPlainObject(item) ? [{ item, index }] : []));
  if (!ends || ends.length !== objectItems.length) return fallback();
  const insertions: Insertion[] = [];
  for (const [n, { item, index }] of objectItems.entries()) {
    const value = flags[index];
    if (value === undefined) continue;
    if (FLAG in item) return fallback();
    insertions.push({ at: ends[n]!, empty: Object.keys(item).length === 0, value });
  }
  return splice(text, insertions);
}

interface Insertion {
  /** Offset of the object's closing brace. */
  at: number;
  empty: boolean;
  value: boolean;
}

function splice(text: string, insertions: readonly Insertion[]): string {
  let out = '';
  let from = 0;
  for (const { at, empty, value } of insertions) {
    out += `${text.slice(from, at)}${empty ? '' : ','}"${FLAG}":${value}`;
    from = at;
  }
  return out + text.slice(from);
}

function closingBrace(text: string): number | undefined {
  const match = /\}\s*$/.exec(text);
  return match ? match.index : undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * Offsets of the closing braces of the object items of the top-level object's array `key`, in
 * order; undefined when the text is not shaped like that. One pass over the text that jumps from
 * quote to quote inside strings (legacy's lists are mostly string values), so a 200-item answer
 * costs a few thousand steps rather than one per character.
 */
function objectItemEnds(text: string, key: string): number[] | undefined {
  const stack: number[] = [];
  const ends: number[] = [];
  let expectingKey = false;
  let lastTopKey: string | undefined;
  let inTarget = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      i = closingQuote(text, i);
      if (i === -1) return undefined;
      if (stack.length === 1 && expectingKey) {
        lastTopKey = JSON.parse(text.slice(start, i + 1)) as string;
        expectingKey = false;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (c === OPEN_BRACKET && stack.length === 1 && lastTopKey === key) inTarget = true;
      stack.push(c);
      expectingKey = c === OPEN_BRACE;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (c === CLOSE_BRACE && inTarget && stack.length === 3) ends.push(i);
      stack.pop();
      if (c === CLOSE_BRACKET && stack.length === 1) inTarget = false;
      expectingKey = false;
    } else if (c === COMMA) {
      expectingKey = stack.at(-1) === OPEN_BRACE;
      if (stack.length === 1) lastTopKey = undefined;
    }
  }
  return stack.length === 0 ? ends : undefined;
}

/** The offset of the quote that closes the string opened at `open`, or -1 when it is never closed. */
function closingQuote(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote === -1) return -1;
    // Escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}
