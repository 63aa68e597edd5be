import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scanList, withItemFlags, withScannedItemFlags } from '../../src/proxy/json-flags.js';
import { isPlainObject } from '../../src/proxy/legacy-augmentation.js';

const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);
const FLAG = 'has_missing_fields';

/** Strings that trip naive scanners: quotes, backslashes, braces, brackets, commas and non-ASCII. */
const trickyString = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '"',
    '\\',
    '\\"',
    '}',
    ']',
    '{"a":1}',
    '[,]',
    ',',
    'Renée',
    '\u2028',
    '\\\\"}',
    'user_details_id',
    'has_missing_fields',
    'results',
    '\n\t',
  ),
);
const value = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    trickyString,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(trickyString, tie('value'), { maxKeys: 3 }),
  ),
})).value;
/** A list item: mostly objects (some nested, some with a patient), sometimes anything else. */
const item = fc.oneof(
  fc.dictionary(trickyString, value, { maxKeys: 4 }),
  fc.record({ user_details_id: fc.integer({ min: 1 }), meta: value, name: trickyString }),
  fc.record(
    {
      user_details_id: fc.oneof(fc.integer(), fc.stringMatching(/^\d{0,11}$/), value),
      nested: fc.record({ user_details_id: fc.integer({ min: 1 }) }),
      [FLAG]: fc.boolean(),
    },
    { requiredKeys: [] },
  ),
  value,
);
/** An answer with the list somewhere among other top-level keys, some of which hold nested lists. */
const answer = fc
  .tuple(fc.dictionary(trickyString, value, { maxKeys: 3 }), fc.array(item, { maxLength: 8 }))
  .map(([others, results]) => {
    const shaped: Record<string, unknown> = { ...others, results };
    return shaped;
  });

/** JSON text with random whitespace between tokens, as another server might format it. */
const indent = fc.constantFrom(undefined, 1, 2, '\t');

describe('flagging list items keeps legacy’s bytes', () => {
  it('adds the flag to exactly the flagged object items and changes nothing else, whatever the JSON holds', () => {
    fc.assert(
      fc.property(
        answer,
        indent,
        fc.array(fc.constantFrom(true, false, undefined)),
        (shaped, space, flagPicks) => {
          const text = JSON.stringify(shaped, null, space);
          const parsed = JSON.parse(text) as Record<string, unknown>;
          const items = parsed.results as unknown[];
          const flags = items.map((_, i) => flagPicks[i % Math.max(flagPicks.length, 1)]);
          const flagged = JSON.parse(withItemFlags(text, parsed, 'results', flags)) as Record<
            string,
            unknown
          >;
          const expected = {
            ...parsed,
            results: items.map((it, i) =>
              flags[i] === undefined || !isPlainObject(it) ? it : { ...it, [FLAG]: flags[i] },
            ),
          };
          expect(flagged).toEqual(expected);
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('splices without re-serializing when no item carries the flag already', () => {
    const text = '{"results": [ {"n": 1.50, "s": "a\\"}b"}, {"big": 9007199254740993} ],"x":[{"y":{}}]}';
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(withItemFlags(text, parsed, 'results', [true, false])).toBe(
      '{"results": [ {"n": 1.50, "s": "a\\"}b","has_missing_fields":true}, {"big": 9007199254740993,"has_missing_fields":false} ],"x":[{"y":{}}]}',
    );
  });

  it('treats a quote after an even run of backslashes as the end of the string', () => {
    const text = '{"results":[{"path":"C:\\\\"},{"q":"\\\\\\"{"}]}';
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const flagged = withItemFlags(text, parsed, 'results', [true, true]);
    expect(JSON.parse(flagged)).toEqual({
      results: [
        { path: 'C:\\', [FLAG]: true },
        { q: '\\"{', [FLAG]: true },
      ],
    });
  });
});

/** What the scanner must report for each item, read from JSON.parse's answer. */
function referenceScan(items: unknown[]) {
  return items.map((it) =>
    isPlainObject(it)
      ? {
          empty: Object.keys(it).length === 0,
          hasFlag: FLAG in it,
          id:
            it.user_details_id !== null && typeof it.user_details_id === 'object'
              ? undefined
              : it.user_details_id,
        }
      : undefined,
  );
}

describe('scanning a list from legacy’s text without JSON.parse', () => {
  it('finds each item’s own id, flag and end exactly as JSON.parse and the parsed splice do, whatever the JSON holds', () => {
    fc.assert(
      fc.property(
        answer,
        indent,
        fc.array(fc.constantFrom(true, false, undefined)),
        (shaped, space, flagPicks) => {
          const text = JSON.stringify(shaped, null, space);
          const parsed = JSON.parse(text) as Record<string, unknown>;
          const items = parsed.results as unknown[];
          const list = scanList(text, 'results', 'user_details_id');
          expect(list?.map((it) => it && { empty: it.empty, hasFlag: it.hasFlag, id: it.id })).toEqual(
            referenceScan(items),
          );
          for (const it of list ?? []) if (it) expect(text[it.end]).toBe('}');
          const flags = items.map((it, i) =>
            isPlainObject(it) && FLAG in it ? undefined : flagPicks[i % Math.max(flagPicks.length, 1)],
          );
          // Spliced as bytes when the text is ASCII, as a string otherwise: the same answer either way.
          const spliced = withScannedItemFlags(Buffer.from(text), text, list!, flags);
          expect(spliced.toString()).toBe(withItemFlags(text, parsed, 'results', flags));
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('reads ids written with escapes, as digit strings and with whitespace around them', () => {
    const text =
      '{ "other" : [ {"user_details_id": 9} ] , "results" : [ { "user\\u005fdetails_id" : 5 } ,\n' +
      '{"user_details_id":"\\u0037"}, {"user_details_id" :1.0e1}, {"n":{"user_details_id":3}}, 4, [] ,{} ] }';
    expect(JSON.parse(text)).toBeTruthy();
    expect(scanList(text, 'results', 'user_details_id')?.map((it) => it?.id)).toEqual([
      5,
      '7',
      10,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('takes the last of an item’s repeated ids, as JSON.parse does', () => {
    const text =
      '{"results":[{"user_details_id":5,"user_details_id":6},{"user_details_id":5,"user_details_id":{}}]}';
    expect(scanList(text, 'results', 'user_details_id')?.map((it) => it?.id)).toEqual([6, undefined]);
  });

  it('is unsure, so the caller parses, when the text is not one object holding the list once', () => {
    const unsure = [
      '',
      '{"results":[1,]}',
      '{"results":[,1]}',
      '{"results":[{"a" 1}]}',
      '{"results":[{"a":1,}]}',
      '{"results":[{"a"::1}]}',
      '{"results":[{1:1}]}',
      '{"results":[tru]}',
      '{"results":[01]}',
      '{"results":[1.]}',
      '{"results":[-]}',
      '{"results":[1e]}',
      '{"results":[nulls]}',
      '{"results":[{"a":1]}]}',
      '{"results":[]}}',
      '{"results":[]',
      '{"results":["open]}',
      '{"results":[]} x',
      '{"results":[]}{}',
      '\uFEFF{"results":[]}',
      '{"results":[\f]}',
      '{"results":[{"user_details_id":"\\x"}]}',
    ];
    for (const text of unsure) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(scanList(text, 'results', 'user_details_id'), text).toBeUndefined();
    }
    for (const text of [
      '[{"user_details_id":1}]',
      '"results"',
      '{"results":{"user_details_id":1}}',
      '{"results":null}',
      '{"results":"[]"}',
      '{"other":[]}',
      '{}',
      '{"results":[],"results":[{"user_details_id":1}]}',
    ]) {
      expect(scanList(text, 'results', 'user_details_id'), text).toBeUndefined();
    }
  });

  it('does not check the inside of strings, so JSON with a raw control character there still scans', () => {
    const text = '{"results":[{"note":"a\u0001b","user_details_id":1}]}'.replace('\\u0001', '\u0001');
    expect(() => JSON.parse(text)).toThrow();
    expect(scanList(text, 'results', 'user_details_id')?.map((it) => it?.id)).toEqual([1]);
  });
});
