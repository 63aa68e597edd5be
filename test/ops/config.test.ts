import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig, type RawEnv } from '../../src/config.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function configErrorOf(env: RawEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'nonsense'],
    ['DATABASE_URL', 'postgres://root@127.0.0.1:5432/missing_details'],
    ['LEGACY_TIMEOUT_MS', '-1'],
    ['LEGACY_TIMEOUT_MS', '1.5'],
    ['LOG_LEVEL', 'loud'],
    ['LEGACY_PY3_URL', 'not a url'],
    ['LEGACY_PY2_URL', 'ftp://py2.internal/'],
    ['AUTH_JWKS_URL', 'keys.json'],
    ['NODE_ENV', 'staging'],
  ])('refuses %s=%s with a ConfigError naming the variable', (name, value) => {
    const error = configErrorOf({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.problems).toEqual([expect.stringMatching(new RegExp(`^${name}: `))]);
  });

  it('names every bad variable at once', () => {
    const error = configErrorOf({ PORT: 'abc', LOG_LEVEL: 'loud', LEGACY_TIMEOUT_MS: '-1' });
    expect(error.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'LEGACY_TIMEOUT_MS',
      'LOG_LEVEL',
      'PORT',
    ]);
  });

  it('requires AUTH_JWT_SECRET or AUTH_JWKS_URL in production', () => {
    const error = configErrorOf({ NODE_ENV: 'production' });
    expect(error.message).toContain('AUTH_JWT_SECRET');
    expect(error.message).toContain('AUTH_JWKS_URL');
    expect(loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: 'a-real-secret' }).auth).toMatchObject({
      jwtSecret: 'a-real-secret',
      usingDevelopmentSecret: false,
    });
    expect(
      loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://id.example.com/jwks.json' }).auth,
    ).toMatchObject({ jwtSecret: undefined, jwksUrl: 'https://id.example.com/jwks.json' });
  });

  it("uses the contract's defaults and the development secret outside production", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      nodeEnv: 'development',
      databaseUrl: 'mysql://root@127.0.0.1:3306/missing_details',
      host: '127.0.0.1',
      port: 3000,
      legacyTimeoutMs: 30_000,
      logLevel: 'info',
      auth: { jwtSecret: DEVELOPMENT_JWT_SECRET, usingDevelopmentSecret: true },
    });
    expect(config.legacyPy3Url).toMatch(/^http:\/\//);
    expect(config.legacyPy2Url).toMatch(/^http:\/\//);
  });

  it('coerces numbers and trims trailing slashes from the legacy URLs', () => {
    const config = loadConfig({
      PORT: '8080',
      LEGACY_TIMEOUT_MS: '2500',
      LEGACY_PY3_URL: 'http://py3.internal:8000/',
      DATABASE_URL: 'mariadb://md:pw@db.internal:3306/missing_details?ssl=true',
    });
    expect(config).toMatchObject({
      port: 8080,
      legacyTimeoutMs: 2500,
      legacyPy3Url: 'http://py3.internal:8000',
      databaseUrl: 'mariadb://md:pw@db.internal:3306/missing_details?ssl=true',
    });
  });

  it('treats an empty variable as unset, so PORT= does not mean a random port', () => {
    const config = loadConfig({ PORT: '', LEGACY_TIMEOUT_MS: '', LOG_LEVEL: '', AUTH_JWT_SECRET: '' });
    expect(config).toMatchObject({ port: 3000, legacyTimeoutMs: 30_000, logLevel: 'info' });
    expect(config.auth.usingDevelopmentSecret).toBe(true);
  });

  it('returns a deeply frozen configuration', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.auth)).toBe(true);
    expect(Object.isFrozen(config.bridge)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.auth as { jwtSecret: string }).jwtSecret = 'stolen';
    }).toThrow(TypeError);
    expect(config.port).toBe(3000);
  });
});

describe('the server process', () => {
  it('exits non-zero at start-up with a message naming a bad variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, PORT: 'abc', NODE_ENV: 'test', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toMatch(/PORT/);
    expect(output).not.toMatch(/at .*\.ts:\d+/);
    // Loading the app through tsx takes a while on a busy machine.
  }, 120_000);
});
