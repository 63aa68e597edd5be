import { describe, expect, it } from 'vitest';
import {
  carriesAField,
  decideCapture,
  type PatientRow,
  type Save,
  stillMissing,
  visibleTo,
} from '../../src/engine/capture-rules.js';
import { type LabConfigRow, LabConfigs } from '../../src/engine/lab-config-cache.js';

// The engine's decisions over plain data: no database, no clock (today is an input).
const TODAY = '2026-12-04';

const EMAIL = 1;
const MOBILE = 2;
const DOCTOR = 5;
const INSURANCE = 7;
const TEMPLATES: Record<number, { name: string; module: string }> = {
  [EMAIL]: { name: 'email', module: 'patient' },
  [MOBILE]: { name: 'mobile', module: 'patient' },
  [DOCTOR]: { name: 'referral_doctor', module: 'patient' },
  [INSURANCE]: { name: 'insurance', module: 'bill' },
};

interface ConfigSpec {
  id: number;
  fieldId: number;
  text: string;
  disabled?: boolean;
  templateActive?: boolean;
  entityObjectId?: number | null;
  traced?: number[];
}

function configRows(specs: readonly ConfigSpec[]): LabConfigRow[] {
  return specs.flatMap((spec) => {
    const base: LabConfigRow = {
      id: spec.id,
      field_id: spec.fieldId,
      field_value: spec.text,
      is_disabled: spec.disabled ? 1 : 0,
      entity_object_id: spec.entityObjectId ?? null,
      template_name: TEMPLATES[spec.fieldId]!.name,
      template_module: TEMPLATES[spec.fieldId]!.module,
      template_active: spec.templateActive === false ? 0 : 1,
      creation_object_id: null,
      input_type: 'text',
      due_in_hours: null,
    };
    const traced = spec.traced ?? [];
    return traced.length === 0
      ? [base]
      : traced.map((objectId) => ({ ...base, creation_object_id: objectId }));
  });
}

const LAB_CONFIGS = new LabConfigs(
  configRows([
    { id: 11, fieldId: EMAIL, text: 'noemail@lab.in' },
    { id: 12, fieldId: MOBILE, text: '9999999999' },
    { id: 15, fieldId: DOCTOR, text: 'Dr. Unknown', entityObjectId: 501, traced: [500, 501] },
    { id: 17, fieldId: INSURANCE, text: 'Self pay (missing)', entityObjectId: 700 },
  ]),
);

let nextRowId = 1000;
function row(fieldId: number, values: Partial<PatientRow> = {}): PatientRow {
  const template = TEMPLATES[fieldId]!;
  const configId = { [EMAIL]: 11, [MOBILE]: 12, [DOCTOR]: 15, [INSURANCE]: 17 }[fieldId] ?? null;
  return {
    id: nextRowId++,
    billId: template.module === 'bill' ? 90 : null,
    fieldId,
    configId,
    fieldValue: LAB_CONFIGS.byId(configId ?? 0)?.text ?? '',
    orgId: null,
    isResolved: false,
    changedSinceSave: false,
    templateName: template.name,
    templateModule: template.module,
    ...values,
  };
}

function patientSave(values: Record<string, unknown>, more: Partial<Save> = {}): Save {
  return { module: 'patient', billId: null, orgId: null, orgIsCurrent: false, values, today: TODAY, ...more };
}

function billSave(values: Record<string, unknown>, more: Partial<Save> = {}): Save {
  return { module: 'bill', billId: 90, orgId: null, orgIsCurrent: false, values, today: TODAY, ...more };
}

const opened = (save: Save, rows: PatientRow[] = [], configs = LAB_CONFIGS) =>
  decideCapture(save, configs, rows).open.map((o) => o.config.fieldId);

describe('opening rows: a saved value that is still the placeholder opens one row for its field', () => {
  const cases: Array<[string, Record<string, unknown>, number[]]> = [
    ['the exact placeholder text', { email: 'noemail@lab.in' }, [EMAIL]],
    ['the placeholder in another case and with spaces around it', { email: '  NoEmail@Lab.IN ' }, [EMAIL]],
    ['a number equal to the placeholder digits', { mobile: 9999999999 }, [MOBILE]],
    ['a real value', { email: 'ana@example.org' }, []],
    ['an empty string', { email: '' }, []],
    ['only whitespace', { email: '   ' }, []],
    ['null', { email: null }, []],
    ['a key the field map does not know', { e_mail: 'noemail@lab.in' }, []],
    ['two placeholders at once', { email: 'noemail@lab.in', mobile: '9999999999' }, [EMAIL, MOBILE]],
    ['the placeholder entity by its current id', { referral_doctor: { id: 501, name: 'Someone' } }, [DOCTOR]],
    ['an older traced entity of the field', { referral_doctor: { id: 500, name: 'Renamed' } }, [DOCTOR]],
    [
      'another entity that carries the placeholder name',
      { referral_doctor: { id: 999, name: 'Dr. Unknown' } },
      [],
    ],
    ['an entity by name only', { referral_doctor: { name: ' dr. unknown ' } }, [DOCTOR]],
    ['an entity with neither id nor name', { referral_doctor: { id: null, name: '' } }, []],
    ['a list', { email: ['noemail@lab.in'] }, []],
  ];
  it.each(cases)('%s', (_name, values, fields) => {
    expect(opened(patientSave(values))).toEqual(fields);
  });

  it('opens a bill field only for a bill save, and a patient field only for a patient save', () => {
    expect(opened(billSave({ insurance: { id: 700, name: 'x' }, email: 'noemail@lab.in' }))).toEqual([
      INSURANCE,
    ]);
    expect(opened(patientSave({ insurance: { id: 700, name: 'x' } }))).toEqual([]);
  });

  it('opens nothing for a disabled config or an inactive template', () => {
    const configs = new LabConfigs(
      configRows([
        { id: 21, fieldId: EMAIL, text: 'none', disabled: true },
        { id: 22, fieldId: MOBILE, text: '0', templateActive: false },
      ]),
    );
    expect(opened(patientSave({ email: 'none', mobile: '0' }), [], configs)).toEqual([]);
  });

  it('opens under the newest active config of a field', () => {
    const configs = new LabConfigs(
      configRows([
        { id: 31, fieldId: EMAIL, text: 'old@lab.in' },
        { id: 32, fieldId: EMAIL, text: 'new@lab.in' },
      ]),
    );
    expect(
      decideCapture(patientSave({ email: 'new@lab.in' }), configs, []).open.map((o) => o.config.id),
    ).toEqual([32]);
    expect(opened(patientSave({ email: 'old@lab.in' }), [], configs)).toEqual([]);
  });

  it('opens no second row while the field has one open', () => {
    expect(opened(patientSave({ email: 'noemail@lab.in' }), [row(EMAIL)])).toEqual([]);
  });

  it('opens again for a field whose only row is resolved', () => {
    expect(opened(patientSave({ email: 'noemail@lab.in' }), [row(EMAIL, { isResolved: true })])).toEqual([
      EMAIL,
    ]);
  });
});

describe('resolving rows: a present real value resolves the open row of its field', () => {
  it('resolves on a real value, case and spaces aside', () => {
    const open = row(EMAIL);
    expect(decideCapture(patientSave({ email: ' Ana@Example.org ' }), LAB_CONFIGS, [open]).resolve).toEqual([
      open.id,
    ]);
  });

  it('keeps the row open when the value is still its placeholder, in any case', () => {
    const open = row(EMAIL);
    expect(decideCapture(patientSave({ email: 'NOEMAIL@LAB.IN' }), LAB_CONFIGS, [open]).resolve).toEqual([]);
  });

  it('leaves the row alone when the key is absent from the save', () => {
    const open = row(EMAIL);
    expect(decideCapture(patientSave({ mobile: '98' }), LAB_CONFIGS, [open])).toEqual({
      resolve: [],
      open: [],
      move: [],
    });
  });

  it('leaves the row alone when the value is blank', () => {
    const open = row(EMAIL);
    expect(decideCapture(patientSave({ email: '  ' }), LAB_CONFIGS, [open]).resolve).toEqual([]);
  });

  it('keeps an entity row open for every traced placeholder entity of its field', () => {
    for (const id of [500, 501]) {
      const open = row(DOCTOR);
      expect(
        decideCapture(patientSave({ referral_doctor: { id, name: 'x' } }), LAB_CONFIGS, [open]).resolve,
      ).toEqual([]);
    }
  });

  it('resolves an entity row when another entity is picked, even with the placeholder name', () => {
    const open = row(DOCTOR);
    const decision = decideCapture(
      patientSave({ referral_doctor: { id: 42, name: 'Dr. Unknown' } }),
      LAB_CONFIGS,
      [open],
    );
    expect(decision.resolve).toEqual([open.id]);
  });

  it("compares a row against its own config's text, not the field's newest placeholder", () => {
    const open = row(EMAIL, { configId: 99, fieldValue: 'old@lab.in' });
    expect(decideCapture(patientSave({ email: 'old@lab.in' }), LAB_CONFIGS, [open]).resolve).toEqual([]);
    expect(decideCapture(patientSave({ email: 'noemail@lab.in' }), LAB_CONFIGS, [open]).resolve).toEqual([
      open.id,
    ]);
  });

  it("resolves the old row and opens a new one when the save carries the field's newer placeholder", () => {
    const open = row(EMAIL, { configId: 99, fieldValue: 'old@lab.in' });
    const decision = decideCapture(patientSave({ email: 'noemail@lab.in' }), LAB_CONFIGS, [open]);
    expect(decision.resolve).toEqual([open.id]);
    expect(decision.open.map((o) => o.config.fieldId)).toEqual([EMAIL]);
  });

  it("a patient save leaves a bill's rows alone, a bill save leaves other bills' rows alone", () => {
    const billRow = row(INSURANCE);
    expect(decideCapture(patientSave({ insurance: { id: 1 } }), LAB_CONFIGS, [billRow]).resolve).toEqual([]);
    expect(
      decideCapture(billSave({ insurance: { id: 1 } }, { billId: 91 }), LAB_CONFIGS, [billRow]).resolve,
    ).toEqual([]);
    expect(decideCapture(billSave({ insurance: { id: 1 } }), LAB_CONFIGS, [billRow]).resolve).toEqual([
      billRow.id,
    ]);
  });
});

describe('replays: a field the rows say changed after the save is left alone', () => {
  it('neither resolves nor opens a field changed since the original save', () => {
    const open = row(EMAIL, { changedSinceSave: true });
    expect(decideCapture(patientSave({ email: 'real@x.org' }), LAB_CONFIGS, [open]).resolve).toEqual([]);
    const resolvedSince = row(MOBILE, { isResolved: true, changedSinceSave: true });
    expect(opened(patientSave({ mobile: '9999999999' }), [resolvedSince])).toEqual([]);
  });
});

describe('organizations', () => {
  it('lets an organization user see only its own rows, and a lab-wide user every row', () => {
    expect(visibleTo(3)(3)).toBe(true);
    expect(visibleTo(3)(4)).toBe(false);
    expect(visibleTo(3)(null)).toBe(false);
    expect(visibleTo(null)(4)).toBe(true);
  });

  it('moves the open rows not resolved now to the save organization when it is current', () => {
    const stays = row(EMAIL, { orgId: 4 });
    const resolved = row(MOBILE, { orgId: 4 });
    const already = row(DOCTOR, { orgId: 8 });
    const save = patientSave({ mobile: '98' }, { orgId: 8, orgIsCurrent: true });
    const decision = decideCapture(save, LAB_CONFIGS, [stays, resolved, already]);
    expect(decision.resolve).toEqual([resolved.id]);
    expect(decision.move).toEqual([stays.id]);
  });

  it('moves nothing when the save does not know the current organization', () => {
    const decision = decideCapture(patientSave({}, { orgId: 8 }), LAB_CONFIGS, [row(EMAIL, { orgId: 4 })]);
    expect(decision.move).toEqual([]);
  });
});

describe('what stays missing after a save', () => {
  it('reports a row left open, and nothing once the last one resolves', () => {
    const open = row(EMAIL);
    const keep = decideCapture(patientSave({ mobile: '98' }), LAB_CONFIGS, [open]);
    expect(stillMissing(patientSave({ mobile: '98' }), null, [open], keep, 0)).toBe(true);
    const save = patientSave({ email: 'real@x.org' });
    expect(stillMissing(save, null, [open], decideCapture(save, LAB_CONFIGS, [open]), 0)).toBe(false);
  });

  it('reports a row just opened only when the principal can see its organization', () => {
    const save = patientSave({ email: 'noemail@lab.in' }, { orgId: 4 });
    const decision = decideCapture(save, LAB_CONFIGS, []);
    expect(stillMissing(save, null, [], decision, 0)).toBe(true);
    expect(stillMissing(save, 4, [], decision, 0)).toBe(true);
    expect(stillMissing(save, 5, [], decision, 0)).toBe(false);
  });

  it('judges moved rows by the organization they moved to', () => {
    const open = row(EMAIL, { orgId: null });
    const save = patientSave({}, { orgId: 4, orgIsCurrent: true });
    const decision = decideCapture(save, LAB_CONFIGS, [open]);
    expect(stillMissing(save, null, [open], decision, 1)).toBe(true);
  });
});

describe('whether a save needs the configs at all', () => {
  const cases: Array<[string, string, Record<string, unknown>, boolean]> = [
    ['a patient save with a mapped value', 'patient', { email: 'x' }, true],
    ['a patient save with only blank mapped values', 'patient', { email: ' ', mobile: null }, false],
    ['a patient save with only unmapped keys', 'patient', { nickname: 'x' }, false],
    ['a bill save with a patient key only', 'bill', { email: 'x' }, false],
    ['a bill save with an entity', 'bill', { insurance: { id: 3 } }, true],
  ];
  it.each(cases)('%s', (_name, module, values, expected) => {
    expect(carriesAField(module, values)).toBe(expected);
  });
});

describe('junk, with the lab’s junk detection on', () => {
  const typed = (rows: LabConfigRow[], inputType: Record<number, string>) =>
    rows.map((r) => ({ ...r, input_type: inputType[r.field_id] ?? 'text' }));
  const specs: ConfigSpec[] = [
    { id: 11, fieldId: EMAIL, text: 'noemail@lab.in' },
    { id: 12, fieldId: MOBILE, text: '9999999999' },
  ];
  const inputTypes = { [EMAIL]: 'email', [MOBILE]: 'phone' };
  const withJunk = new LabConfigs(typed(configRows(specs), inputTypes), {
    junk_detection: 1,
    extra_junk_values: '{"email":["desk@lab.in"]}',
  });
  const withoutJunk = new LabConfigs(typed(configRows(specs), inputTypes));
  const decide = (values: Record<string, unknown>, rows: PatientRow[] = [], configs = withJunk) =>
    decideCapture(patientSave(values), configs, rows);

  const cases: Array<[string, Record<string, unknown>, Array<[number, 'junk' | null, string]>]> = [
    [
      'a dummy address opens a junk row holding what was saved',
      { email: ' test@example.com ' },
      [[EMAIL, 'junk', 'test@example.com']],
    ],
    ['a short phone opens a junk row', { mobile: '98' }, [[MOBILE, 'junk', '98']]],
    ["the lab's own value opens a junk row", { email: 'Desk@Lab.in' }, [[EMAIL, 'junk', 'Desk@Lab.in']]],
    [
      'the placeholder still opens a placeholder row',
      { email: 'noemail@lab.in' },
      [[EMAIL, null, 'noemail@lab.in']],
    ],
    ['a real value opens nothing', { email: 'ana@gmail.com', mobile: '+91 98450 12345' }, []],
  ];
  for (const [name, values, expected] of cases) {
    it(name, () => {
      expect(decide(values).open.map((o) => [o.config.fieldId, o.detectedAs, o.fieldValue])).toEqual(
        expected,
      );
    });
  }

  it('judges nothing as junk while the lab has it off', () => {
    expect(decide({ email: 'test@example.com', mobile: '98' }, [], withoutJunk).open).toEqual([]);
  });

  it('never resolves a row on junk, placeholder row or junk row alike', () => {
    const placeholderRow = row(EMAIL);
    const junkRow = row(MOBILE, { fieldValue: '98' });
    const decision = decide({ email: 'n/a', mobile: '1111111' }, [placeholderRow, junkRow]);
    expect(decision.resolve).toEqual([]);
    expect(decision.open).toEqual([]);
  });

  it('resolves a junk row on a real value', () => {
    const junkRow = row(MOBILE, { fieldValue: '98' });
    expect(decide({ mobile: '+91 98450 12345' }, [junkRow]).resolve).toEqual([junkRow.id]);
  });
});
