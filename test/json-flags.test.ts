import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withItemFlags } from '../src/proxy/json-flags.js';
import { isPlainObject } from '../src/proxy/legacy-augmentation.js';

const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);
const FLAG = 'has_missing_fields';

/** Strings that trip naive scanners: quotes, backslashes, braces, brackets, commas and non-ASCII. */
const trickyString = fc.oneof(
  fc.string(),
  fc.constantFrom('"', '\\', '\\"', '}', ']', '{"a":1}', '[,]', ',', 'Renée', '\u2028', '\\\\"}'),
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
