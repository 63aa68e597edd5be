import { config as readDotenv } from 'dotenv';
import { z } from 'zod';

/** The development secret used when no signing key is configured outside production. */
export const DEVELOPMENT_JWT_SECRET = 'missing-details-development-secret-do-not-use-in-production';

const optionalUrl = z.preprocess((v) => (v === '' ? undefined : v), z.url().optional());
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());
const booleanish = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    DATABASE_URL: z
      .string()
      .regex(
        /^(mysql|mariadb):\/\/[^/]+\/[A-Za-z0-9_]+(\?.*)?$/,
        'must look like mysql://user@host:port/database',
      )
      .default('mysql://root@127.0.0.1:3306/missing_details'),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    LEGACY_PY3_URL: z.url().default('http://127.0.0.1:3101'),
    LEGACY_PY2_URL: z.url().default('http://127.0.0.1:3102'),
    LEGACY_PY2_TOKEN: z.string().min(1).default('development-py2-token'),
    LEGACY_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(30_000),
    AUTH_JWT_SECRET: optionalString,
    AUTH_JWKS_URL: optionalUrl,
    SESSION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    BRIDGE_WORKER_ENABLED: booleanish(true),
    BRIDGE_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
    BRIDGE_MAX_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
    BRIDGE_MAX_AGE_MS: z.coerce
      .number()
      .int()
      .min(1_000)
      .default(24 * 3600_000),
    BRIDGE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1_000_000).default(100_000),
    BRIDGE_CLAIM_TTL_MS: z.coerce.number().int().min(1_000).max(300_000).default(30_000),
    BRIDGE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && !env.AUTH_JWT_SECRET && !env.AUTH_JWKS_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWT_SECRET'],
        message: 'AUTH_JWT_SECRET or AUTH_JWKS_URL is required when NODE_ENV=production',
      });
    }
  });

export type RawEnv = Record<string, string | undefined>;

export interface AppConfig {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly databaseUrl: string;
  readonly databasePoolSize: number;
  readonly host: string;
  readonly port: number;
  readonly legacyPy3Url: string;
  readonly legacyPy2Url: string;
  readonly legacyPy2Token: string;
  readonly legacyTimeoutMs: number;
  readonly auth: {
    readonly jwtSecret: string | undefined;
    readonly jwksUrl: string | undefined;
    /** True when neither a secret nor a JWKS URL was configured and the development secret is in use. */
    readonly usingDevelopmentSecret: boolean;
    readonly sessionCacheTtlMs: number;
  };
  readonly logLevel: string;
  readonly bridge: {
    readonly workerEnabled: boolean;
    readonly pollIntervalMs: number;
    readonly maxBackoffMs: number;
    readonly maxAgeMs: number;
    readonly maxAttempts: number;
    readonly claimTtlMs: number;
    readonly requestTimeoutMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Parses an environment into the frozen app configuration; throws ConfigError naming each bad variable. */
export function loadConfig(env?: RawEnv, overrides: Partial<RawEnv> = {}): AppConfig {
  const source = env ?? { ...readDotenv({ processEnv: {}, quiet: true }).parsed, ...process.env };
  const parsed = envSchema.safeParse({ ...source, ...overrides });
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const usingDevelopmentSecret = !e.AUTH_JWT_SECRET && !e.AUTH_JWKS_URL;
  return deepFreeze({
    nodeEnv: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    host: e.HOST,
    port: e.PORT,
    legacyPy3Url: e.LEGACY_PY3_URL.replace(/\/+$/, ''),
    legacyPy2Url: e.LEGACY_PY2_URL.replace(/\/+$/, ''),
    legacyPy2Token: e.LEGACY_PY2_TOKEN,
    legacyTimeoutMs: e.LEGACY_TIMEOUT_MS,
    auth: {
      jwtSecret: usingDevelopmentSecret ? DEVELOPMENT_JWT_SECRET : e.AUTH_JWT_SECRET,
      jwksUrl: e.AUTH_JWKS_URL,
      usingDevelopmentSecret,
      sessionCacheTtlMs: e.SESSION_CACHE_TTL_MS,
    },
    logLevel: e.LOG_LEVEL,
    bridge: {
      workerEnabled: e.BRIDGE_WORKER_ENABLED,
      pollIntervalMs: e.BRIDGE_POLL_INTERVAL_MS,
      maxBackoffMs: e.BRIDGE_MAX_BACKOFF_MS,
      maxAgeMs: e.BRIDGE_MAX_AGE_MS,
      maxAttempts: e.BRIDGE_MAX_ATTEMPTS,
      claimTtlMs: e.BRIDGE_CLAIM_TTL_MS,
      requestTimeoutMs: e.BRIDGE_REQUEST_TIMEOUT_MS,
    },
  });
}
