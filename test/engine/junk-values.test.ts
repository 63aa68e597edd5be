import { describe, expect, it } from 'vitest';
import { isJunk, utcDay } from '../../src/engine/junk-values.js';
import { toComparable } from '../../src/engine/value-mapper.js';

const TODAY = '2026-12-04';
const junk = (inputType: string, value: unknown, extra: string[] = []) =>
  isJunk(toComparable(value), { inputType, extraValues: new Set(extra), today: TODAY });

describe('junk values', () => {
  const cases: Array<[string, unknown, boolean, string]> = [
    ['phone', '98', true, 'fewer than 7 digits'],
    ['phone', '(0) 765-43', true, 'fewer than 7 digits after separators'],
    ['phone', '9999999999', true, 'one digit repeated'],
    ['phone', 0, true, 'a zero'],
    ['phone', '1234567890', true, 'a straight run up'],
    ['phone', '9876543210', true, 'a straight run down'],
    ['phone', 'call me', true, 'no digits at all'],
    ['phone', '+91 98450 12345', false, 'a real mobile with separators'],
    ['phone', 9845012345, false, 'a real mobile sent as a number'],
    ['email', 'noemail@lab.in', true, 'a dummy local part'],
    ['email', 'Test@Clinic.com', true, 'a dummy local part in capitals'],
    ['email', 'priya@example.com', true, 'a reserved example domain'],
    ['email', 'priya@mail.test', true, 'a reserved test domain'],
    ['email', 'priya.lab.in', true, 'not an address'],
    ['email', 'priya@localhost', true, 'no top-level domain'],
    ['email', 'priya.sharma@gmail.com', false, 'a real address'],
    ['date', '1900-01-01', true, 'the classic unknown birth date'],
    ['date', '01/01/1901', true, 'the other one, day first'],
    ['date', '2027-01-01', true, 'in the future'],
    ['date', '1984-07-23', false, 'a real birth date'],
    ['date', 'sometime', false, 'text that is no date is not judged'],
    ['text', 'N/A', true, 'n/a in any case'],
    ['text', ' - ', true, 'a dash with spaces'],
    ['text', '.', true, 'a dot'],
    ['text', 'unknown', true, 'unknown'],
    ['text', 'nil', true, 'nil'],
    ['email', 'na', true, 'text rules apply to every input type'],
    ['text', '12 MG Road, Bengaluru', false, 'a real address'],
    ['entity', { id: 41, name: 'Self pay' }, false, 'an entity is judged by the lab values only'],
    ['text', '', false, 'an absent value is not junk (it is absent)'],
  ];
  for (const [inputType, value, expected, why] of cases) {
    it(`${expected ? 'flags' : 'keeps'} ${JSON.stringify(value)} as ${inputType}: ${why}`, () => {
      expect(junk(inputType, value)).toBe(expected);
    });
  }

  it("flags the lab's own extra values, trimmed and in any case, and entity names among them", () => {
    expect(junk('text', '  Walk-In ', ['walk-in'])).toBe(true);
    expect(junk('entity', { id: 9, name: 'CASH' }, ['cash'])).toBe(true);
    expect(junk('text', 'Walk-In Clinic', ['walk-in'])).toBe(false);
  });

  it('takes today from the clock in UTC', () => {
    expect(utcDay(new Date('2026-12-04T23:59:59.999Z'))).toBe('2026-12-04');
  });
});
