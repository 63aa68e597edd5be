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
  const ends = scanList(text, key, FLAG)?.flatMap((item) => (item ? [item.end] : []));
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

/**
 * Legacy's answer with `"has_missing_fields"` spliced into each scanned object item whose flag is
 * defined. Spliced as bytes when the text's offsets are byte offsets (one byte per character, as
 * in legacy's ASCII lists): copying the bytes costs less than encoding the spliced string.
 */
export function withScannedItemFlags(
  bytes: Buffer,
  text: string,
  list: ScannedList,
  flags: ReadonlyArray<boolean | undefined>,
): Buffer | string {
  const insertions: Insertion[] = [];
  for (const [index, item] of list.entries()) {
    const value = flags[index];
    if (item && value !== undefined) insertions.push({ at: item.end, empty: item.empty, value });
  }
  return bytes.length === text.length ? spliceBytes(bytes, insertions) : splice(text, insertions);
}

const FLAG_BYTES = {
  true: { empty: Buffer.from(`"${FLAG}":true`), after: Buffer.from(`,"${FLAG}":true`) },
  false: { empty: Buffer.from(`"${FLAG}":false`), after: Buffer.from(`,"${FLAG}":false`) },
};

function spliceBytes(bytes: Buffer, insertions: readonly Insertion[]): Buffer {
  const inserted = insertions.map(({ empty, value }) => FLAG_BYTES[`${value}`][empty ? 'empty' : 'after']);
  const out = Buffer.allocUnsafe(inserted.reduce((size, b) => size + b.length, bytes.length));
  let from = 0;
  let to = 0;
  for (const [n, { at }] of insertions.entries()) {
    to += bytes.copy(out, to, from, at);
    to += inserted[n]!.copy(out, to);
    from = at;
  }
  bytes.copy(out, to, from);
  return out;
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

/** An object item of a scanned list, located in legacy's text. */
export interface ScannedObjectItem {
  /** Offset of the item's closing brace. */
  readonly end: number;
  readonly empty: boolean;
  /** The item has its own (not a nested object's) `has_missing_fields` key. */
  readonly hasFlag: boolean;
  /**
   * The value of the item's own id key as JSON.parse gives it (the last one when the key repeats),
   * for scalar values; undefined when absent or an object or array.
   */
  readonly id: unknown;
}

/** The items of the top-level object's array, in order: an object item, or undefined for anything else. */
export type ScannedList = ReadonlyArray<ScannedObjectItem | undefined>;

/**
 * The items of the top-level object's array `key`, each object item's end and its `idKey` value,
 * read from the text in one pass without JSON.parse. Undefined whenever the scanner is unsure, so
 * that the caller parses instead: the text is not a top-level object, `key` is missing, repeated
 * or not an array, or the grammar outside strings is broken (bad tokens, commas, colons, nesting,
 * trailing bytes). String contents are not checked: a raw control character or a bad escape
 * inside a string goes unnoticed (JSON.parse would refuse it).
 */
export function scanList(text: string, key: string, idKey: string): ScannedList | undefined {
  const stack: number[] = [];
  const items: Array<ScannedObjectItem | undefined> = [];
  let state = TOP_VALUE;
  /** Whose value comes next: set by a key of the top object or of a list item, read by the value. */
  let pending = OTHER_KEY;
  let listSeen = false;
  let inList = false;
  // The object item being scanned.
  let itemEmpty = true;
  let itemHasFlag = false;
  let itemId: unknown;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE || c === NEWLINE || c === TAB || c === RETURN) continue;
    const depth = stack.length;
    if (c === QUOTE && (state === KEY || state === FIRST_KEY)) {
      const close = closingQuote(text, i);
      if (close === -1) return undefined;
      if (depth === 1 && keyIs(text, i, close, key)) {
        if (listSeen) return undefined; // a repeated list key: JSON.parse keeps the last one
        listSeen = true;
        pending = LIST_KEY;
      } else if (depth === 3 && inList) {
        itemEmpty = false;
        if (keyIs(text, i, close, idKey)) pending = ID_KEY;
        else if (keyIs(text, i, close, FLAG)) itemHasFlag = true;
      }
      state = COLON;
      i = close;
      continue;
    }
    if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      const closesObject = c === CLOSE_BRACE;
      if (stack.pop() !== (closesObject ? OPEN_BRACE : OPEN_BRACKET)) return undefined;
      if (state !== AFTER_VALUE && state !== (closesObject ? FIRST_KEY : FIRST_VALUE)) return undefined;
      if (inList && depth === 3 && closesObject) {
        items.push({ end: i, empty: itemEmpty, hasFlag: itemHasFlag, id: itemId });
      } else if (inList && depth === 2) {
        inList = false;
      }
      state = depth === 1 ? END : AFTER_VALUE;
      continue;
    }
    if (c === COMMA) {
      if (state !== AFTER_VALUE) return undefined;
      state = stack[depth - 1] === OPEN_BRACE ? KEY : VALUE;
      continue;
    }
    if (c === COLON_CHAR) {
      if (state !== COLON) return undefined;
      state = VALUE;
      continue;
    }
    // A value starts here.
    if (state !== VALUE && state !== FIRST_VALUE && !(state === TOP_VALUE && c === OPEN_BRACE))
      return undefined;
    const role = depth === 1 || depth === 3 ? pending : OTHER_KEY;
    pending = OTHER_KEY;
    const isItem = depth === 2 && inList;
    const isId = depth === 3 && inList && role === ID_KEY;
    if (role === LIST_KEY && c !== OPEN_BRACKET) return undefined; // not a list: JSON.parse decides
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (role === LIST_KEY) inList = true;
      if (isItem && c === OPEN_BRACE) {
        itemEmpty = true;
        itemHasFlag = false;
        itemId = undefined;
      } else if (isItem) {
        items.push(undefined);
      } else if (isId) {
        itemId = undefined;
      }
      stack.push(c);
      state = c === OPEN_BRACE ? FIRST_KEY : FIRST_VALUE;
      continue;
    }
    const end = c === QUOTE ? closingQuote(text, i) + 1 : scalarEnd(text, i, c);
    if (end <= 0) return undefined;
    if (isItem) items.push(undefined);
    else if (isId) {
      const id = c === QUOTE ? stringValue(text, i, end - 1) : scalarValue(text, i, end, c);
      if (id === undefined) return undefined;
      itemId = id;
    }
    state = AFTER_VALUE;
    i = end - 1;
  }
  return state === END && listSeen ? items : undefined;
}

// Scanner states: what the grammar allows next.
/** The start: only the top-level object. */
const TOP_VALUE = 0;
const VALUE = 1;
/** Right after `[`: a value or `]`. */
const FIRST_VALUE = 2;
const KEY = 3;
/** Right after `{`: a key or `}`. */
const FIRST_KEY = 4;
const COLON = 5;
/** After a value: `,` or a closing bracket. */
const AFTER_VALUE = 6;
/** After the top-level object: only whitespace. */
const END = 7;

const OTHER_KEY = 0;
const LIST_KEY = 1;
const ID_KEY = 2;

/** Whether the string token between the quotes at `open` and `close` decodes to `name`. */
function keyIs(text: string, open: number, close: number, name: string): boolean {
  const length = close - open - 1;
  if (length === name.length) return text.startsWith(name, open + 1);
  // Escapes only lengthen a key, so a longer one can still spell `name`.
  if (length < name.length || !hasBackslash(text, open, close)) return false;
  return stringValue(text, open, close) === name;
}

/** The string token between the quotes at `open` and `close`, decoded; undefined when it does not decode. */
function stringValue(text: string, open: number, close: number): string | undefined {
  if (!hasBackslash(text, open, close)) return text.slice(open + 1, close);
  try {
    return JSON.parse(text.slice(open, close + 1)) as string;
  } catch {
    return undefined;
  }
}

function hasBackslash(text: string, open: number, close: number): boolean {
  for (let i = open + 1; i < close; i++) if (text.charCodeAt(i) === BACKSLASH) return true;
  return false;
}

/** The number or literal token from `from` to `end` (which starts with `c`), as JSON.parse gives it. */
function scalarValue(text: string, from: number, end: number, c: number): unknown {
  if (c === LETTER_T) return true;
  if (c === LETTER_F) return false;
  if (c === LETTER_N) return null;
  return Number(text.slice(from, end));
}

/** The offset after the number or literal that starts at `from` with `c`, or -1 when it is no JSON token. */
function scalarEnd(text: string, from: number, c: number): number {
  if (c === LETTER_T) return text.startsWith('true', from) ? from + 4 : -1;
  if (c === LETTER_F) return text.startsWith('false', from) ? from + 5 : -1;
  if (c === LETTER_N) return text.startsWith('null', from) ? from + 4 : -1;
  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  let i = from;
  if (c === MINUS) i++;
  if (text.charCodeAt(i) === DIGIT_0) i++;
  else if (isDigit(text.charCodeAt(i))) while (isDigit(text.charCodeAt(i))) i++;
  else return -1;
  if (text.charCodeAt(i) === DOT) {
    i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  const e = text.charCodeAt(i);
  if (e === LETTER_E || e === LETTER_CAPITAL_E) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === PLUS || sign === MINUS) i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  return i;
}

const isDigit = (c: number) => c >= DIGIT_0 && c <= DIGIT_9;

const SPACE = 0x20;
const NEWLINE = 0x0a;
const TAB = 0x09;
const RETURN = 0x0d;
const COLON_CHAR = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LETTER_E = 0x65;
const LETTER_CAPITAL_E = 0x45;
const LETTER_T = 0x74;
const LETTER_F = 0x66;
const LETTER_N = 0x6e;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

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
