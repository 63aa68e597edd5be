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

/**
 * Offsets of the closing braces of the object items of the top-level object's array `key`, in
 * order; undefined when the text is not shaped like that. Strings are skipped with their escapes.
 */
function objectItemEnds(text: string, key: string): number[] | undefined {
  const stack: string[] = [];
  const ends: number[] = [];
  let expectingKey = false;
  let lastTopKey: string | undefined;
  let inTarget = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (stack.length === 1 && expectingKey) {
        lastTopKey = JSON.parse(text.slice(start, i + 1)) as string;
        expectingKey = false;
      }
    } else if (c === '{' || c === '[') {
      if (c === '[' && stack.length === 1 && lastTopKey === key) inTarget = true;
      stack.push(c);
      expectingKey = c === '{';
    } else if (c === '}' || c === ']') {
      if (c === '}' && inTarget && stack.length === 3) ends.push(i);
      stack.pop();
      if (c === ']' && stack.length === 1) inTarget = false;
      expectingKey = false;
    } else if (c === ',') {
      expectingKey = stack.at(-1) === '{';
      if (stack.length === 1) lastTopKey = undefined;
    }
  }
  return stack.length === 0 ? ends : undefined;
}
