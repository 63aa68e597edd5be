import { readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { describe, expect, it } from 'vitest';
import { configVariables, loadConfig } from '../../src/config.js';
import { REPO_ROOT } from '../support/service-process.js';

/** .env.example lists every variable of the config schema (src/config.ts) with its default, and nothing else. */

const example = parse(readFileSync(`${REPO_ROOT}.env.example`, 'utf8'));
const schema = configVariables();

describe('.env.example', () => {
  it('lists every variable the configuration schema reads', () => {
    const missing = Object.keys(schema).filter((name) => !(name in example));
    expect(missing, `add to .env.example (and docs/configuration.md): ${missing.join(', ')}`).toEqual([]);
  });

  it('lists no variable the schema does not know', () => {
    const unknown = Object.keys(example).filter((name) => !(name in schema));
    expect(unknown, `not in src/config.ts, remove from .env.example: ${unknown.join(', ')}`).toEqual([]);
  });

  it('gives each variable its default (empty where there is none)', () => {
    const wrong = Object.entries(schema)
      .filter(([name, fallback]) => name in example && example[name] !== (fallback ?? ''))
      .map(([name, fallback]) => `${name}=${example[name]} (default: ${fallback ?? 'none, leave empty'})`);
    expect(wrong, `fix these defaults in .env.example: ${wrong.join('; ')}`).toEqual([]);
  });

  it('is a valid configuration as it stands', () => {
    expect(() => loadConfig(example)).not.toThrow();
  });
});
