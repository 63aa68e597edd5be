import { config as readDotenv } from 'dotenv';
import { z } from 'zod';

/** The development secret used when no signing key is configured outside production. */
export const DEVELOPMENT_JWT_SECRET = 'missing-details-development-secret-do-not-use-in-production';

const httpUrl = () => z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const optionalUrl = z.preprocess((v) => (v === '' ? undefined : v), httpUrl().optional());
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
    LEGACY_PY3_URL: httpUrl().default('http://127.0.0.1:3101'),
    LEGACY_PY2_URL: httpUrl().default('http://127.0.0.1:3102'),
    LEGACY_PY2_TOKEN: z.string().min(1).default('development-py2-token'),
    LEGACY_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(30_000),
    AUTH_JWT_SECRET: optionalString,
    AUTH_JWKS_URL: optionalUrl,
    AUTH_JWT_ISSUER: optionalString,
    AUTH_JWT_AUDIENCE: optionalString,
    AUTH_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(5),
    // The front door: how long a client may take to send its headers, to send the next piece of its
    // body, and to finish a whole request; how long an idle keep-alive connection stays open.
    HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
    HTTP_BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
    HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(72_000),
    // Addresses of the edges (nginx) whose X-Forwarded-* headers are kept and appended to.
    TRUST_PROXY: z
      .string()
      .default('')
      .transform((list) =>
        list
          .split(',')
          .map((address) => address.trim())
          .filter(Boolean),
      ),
    CLIENT_MAX_OPEN_REQUESTS: z.coerce.number().int().min(1).max(100_000).default(64),
    LEGACY_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(10_000).default(256),
    LEGACY_ANSWER_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    LEGACY_BUFFER_BUDGET_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024),
    SESSION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // Operations (docs/operations.md): log lines as JSON (default) or human-readable (pino-pretty, a
    // devDependency: development only); migrate on start (false: `npm run db:migrate` as a release job);
    // how long readiness answers 503 after SIGTERM before the listener closes; the standalone worker's
    // /health and /metrics port; the most entries the session and verified-token caches hold.
    LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
    MIGRATE_ON_START: booleanish(true),
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(5_000),
    WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
    SESSION_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
    TOKEN_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
    // Tracing (docs/tracing.md): the OpenTelemetry SDK reads the standard OTEL_* variables itself; these
    // decide whether it starts at all (off unless an exporter is set) and are listed so a typo shows.
    OTEL_TRACES_EXPORTER: optionalString,
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalUrl,
    OTEL_SERVICE_NAME: z.string().min(1).default('missing-details-service'),
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
    // Legacy bridge worker tuning: deliveries in flight per process, first retry delay (doubled per
    // attempt, jittered, capped by BRIDGE_MAX_BACKOFF_MS), consecutive PY-2 failures that open the
    // circuit breaker and how long it stays open before one probe, how long SIGTERM waits for
    // deliveries in flight before releasing their claims, and how often queue stats are logged.
    BRIDGE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
    BRIDGE_BASE_BACKOFF_MS: z.coerce.number().int().min(10).max(600_000).default(1_000),
    BRIDGE_BREAKER_THRESHOLD: z.coerce.number().int().min(1).max(1_000).default(5),
    BRIDGE_BREAKER_HALF_OPEN_MS: z.coerce.number().int().min(10).max(600_000).default(5_000),
    BRIDGE_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
    BRIDGE_STATS_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
    // Capture durability: the directory where a failed capture is spooled when even the database is
    // unreachable (the capture retrier moves it into md_capture_outbox later), how often the retrier
    // looks for due captures, and the cap of its exponential backoff.
    CAPTURE_SPOOL_DIR: z.string().min(1).default('./var/capture-spool'),
    CAPTURE_RETRY_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
    CAPTURE_RETRY_MAX_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
    // Shadow mode (off at 0): the share of the shim's GET answers (0 to 1) that are also asked of legacy
    // PY-3 after they were sent, and compared; how long one such legacy call may take; how many may be
    // in flight at once (beyond that a sampled request is skipped, never queued).
    SHADOW_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0),
    SHADOW_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(2_000),
    SHADOW_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000).default(16),
    // Live counts (tRPC labFields.onChange over SSE): how often each lab with subscribers has its open
    // count read (one shared read per lab and process, whatever the number of clients), how often an
    // unchanged count is sent again as a heartbeat (finds dead connections), and how many streams one
    // user and one lab may hold open in one process (beyond that: TOO_MANY_REQUESTS).
    LIVE_COUNTS_POLL_INTERVAL_MS: z.coerce.number().int().min(20).max(60_000).default(1_000),
    LIVE_COUNTS_HEARTBEAT_MS: z.coerce.number().int().min(100).max(600_000).default(25_000),
    LIVE_COUNTS_MAX_PER_USER: z.coerce.number().int().min(1).max(100).default(5),
    LIVE_COUNTS_MAX_PER_LAB: z.coerce.number().int().min(1).max(10_000).default(200),
    // Limits (src/limits): requests per principal (lab + user, else client IP) and window on the service's
    // own routes, /trpc and the captured/flagged legacy paths (beyond: 429 with Retry-After); load
    // shedding with 503 + Retry-After (seconds) when the event loop lags more than the delay (0: off) or
    // the V8 heap holds more than the bytes (0: 90% of the heap limit), sampled at the interval.
    RATE_LIMIT_MAX: z.coerce.number().int().min(1).max(10_000_000).default(600),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
    UNDER_PRESSURE_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(1_000),
    UNDER_PRESSURE_MAX_HEAP_USED_BYTES: z.coerce.number().int().min(0).default(0),
    UNDER_PRESSURE_SAMPLE_INTERVAL_MS: z.coerce.number().int().min(5).max(60_000).default(1_000),
    UNDER_PRESSURE_RETRY_AFTER_S: z.coerce.number().int().min(1).max(3_600).default(10),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && env.LOG_FORMAT === 'pretty') {
      ctx.addIssue({
        code: 'custom',
        path: ['LOG_FORMAT'],
        message: 'pretty is for development (pino-pretty is not installed in production); use json',
      });
    }
    if (env.NODE_ENV === 'production' && !env.AUTH_JWT_SECRET && !env.AUTH_JWKS_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWT_SECRET'],
        message: 'AUTH_JWT_SECRET or AUTH_JWKS_URL is required when NODE_ENV=production',
      });
    } else if (!env.AUTH_JWT_SECRET && !env.AUTH_JWKS_URL && !isLoopback(env.HOST)) {
      // The development secret is public: tokens signed with it are only acceptable on a machine of one's own.
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWT_SECRET'],
        message: `AUTH_JWT_SECRET or AUTH_JWKS_URL is required when HOST (${env.HOST}) is not a loopback address`,
      });
    }
  });

/** The schema's variables with their defaults (undefined: no default), for .env.example's test. */
export function configVariables(): Record<string, string | undefined> {
  const defaults: Record<string, unknown> = envSchema.parse({});
  return Object.fromEntries(
    Object.keys(envSchema.shape).map((name) => {
      const value = defaults[name];
      return [name, value === undefined ? undefined : String(value)];
    }),
  );
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

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
  /** Connections to PY-3 at most; a request waiting longer than legacyTimeoutMs for one gets a 504. */
  readonly legacyMaxConnections: number;
  /** A flagged legacy answer is buffered up to this size, within one budget shared by the process. */
  readonly legacyAnswerMaxBytes: number;
  readonly legacyBufferBudgetBytes: number;
  /** Peers whose X-Forwarded-* headers are trusted (TRUST_PROXY). */
  readonly trustedProxies: readonly string[];
  readonly http: {
    readonly headersTimeoutMs: number;
    readonly bodyIdleTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    /** Requests one client address may have open at once; beyond: 429. */
    readonly clientMaxOpenRequests: number;
  };
  readonly auth: {
    readonly jwtSecret: string | undefined;
    readonly jwksUrl: string | undefined;
    /** True when neither a secret nor a JWKS URL was configured and the development secret is in use. */
    readonly usingDevelopmentSecret: boolean;
    /** When set, a token must carry this `iss` / `aud`. */
    readonly jwtIssuer: string | undefined;
    readonly jwtAudience: string | undefined;
    readonly clockToleranceSeconds: number;
    readonly sessionCacheTtlMs: number;
    readonly sessionCacheMaxEntries: number;
    readonly tokenCacheMaxEntries: number;
  };
  readonly logLevel: string;
  readonly logFormat: 'json' | 'pretty';
  readonly operations: {
    readonly migrateOnStart: boolean;
    readonly shutdownGraceMs: number;
    readonly workerPort: number;
  };
  readonly tracing: {
    /** True when an exporter is configured: OTEL_TRACES_EXPORTER other than none, or an OTLP endpoint. */
    readonly enabled: boolean;
    readonly serviceName: string;
  };
  readonly capture: {
    readonly spoolDir: string;
    readonly retryPollIntervalMs: number;
    readonly retryMaxBackoffMs: number;
  };
  readonly bridge: {
    readonly workerEnabled: boolean;
    readonly pollIntervalMs: number;
    readonly maxBackoffMs: number;
    readonly maxAgeMs: number;
    readonly maxAttempts: number;
    readonly claimTtlMs: number;
    readonly requestTimeoutMs: number;
    readonly concurrency: number;
    readonly baseBackoffMs: number;
    readonly breakerThreshold: number;
    readonly breakerHalfOpenMs: number;
    readonly shutdownGraceMs: number;
    readonly statsIntervalMs: number;
  };
  readonly shadow: {
    readonly sampleRate: number;
    readonly timeoutMs: number;
    readonly maxInFlight: number;
  };
  readonly liveCounts: {
    readonly pollIntervalMs: number;
    readonly heartbeatMs: number;
    readonly maxPerUser: number;
    readonly maxPerLab: number;
  };
  readonly limits: {
    readonly rateLimitMax: number;
    readonly rateLimitWindowMs: number;
    readonly maxEventLoopDelayMs: number;
    readonly maxHeapUsedBytes: number;
    readonly pressureSampleIntervalMs: number;
    readonly retryAfterSeconds: number;
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
  // An empty variable (`PORT=`) means unset, not zero or "": it gets the default.
  const given = Object.entries({ ...source, ...overrides }).filter(([, value]) => value !== '');
  const parsed = envSchema.safeParse(Object.fromEntries(given));
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
    legacyMaxConnections: e.LEGACY_MAX_CONNECTIONS,
    legacyAnswerMaxBytes: e.LEGACY_ANSWER_MAX_BYTES,
    legacyBufferBudgetBytes: e.LEGACY_BUFFER_BUDGET_BYTES,
    trustedProxies: e.TRUST_PROXY,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      bodyIdleTimeoutMs: e.HTTP_BODY_IDLE_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      clientMaxOpenRequests: e.CLIENT_MAX_OPEN_REQUESTS,
    },
    auth: {
      jwtSecret: usingDevelopmentSecret ? DEVELOPMENT_JWT_SECRET : e.AUTH_JWT_SECRET,
      jwksUrl: e.AUTH_JWKS_URL,
      usingDevelopmentSecret,
      jwtIssuer: e.AUTH_JWT_ISSUER,
      jwtAudience: e.AUTH_JWT_AUDIENCE,
      clockToleranceSeconds: e.AUTH_CLOCK_TOLERANCE_S,
      sessionCacheTtlMs: e.SESSION_CACHE_TTL_MS,
      sessionCacheMaxEntries: e.SESSION_CACHE_MAX_ENTRIES,
      tokenCacheMaxEntries: e.TOKEN_CACHE_MAX_ENTRIES,
    },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    operations: {
      migrateOnStart: e.MIGRATE_ON_START,
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
      workerPort: e.WORKER_PORT,
    },
    tracing: {
      enabled: tracingEnabled(e),
      serviceName: e.OTEL_SERVICE_NAME,
    },
    capture: {
      spoolDir: e.CAPTURE_SPOOL_DIR,
      retryPollIntervalMs: e.CAPTURE_RETRY_POLL_INTERVAL_MS,
      retryMaxBackoffMs: e.CAPTURE_RETRY_MAX_BACKOFF_MS,
    },
    bridge: {
      workerEnabled: e.BRIDGE_WORKER_ENABLED,
      pollIntervalMs: e.BRIDGE_POLL_INTERVAL_MS,
      maxBackoffMs: e.BRIDGE_MAX_BACKOFF_MS,
      maxAgeMs: e.BRIDGE_MAX_AGE_MS,
      maxAttempts: e.BRIDGE_MAX_ATTEMPTS,
      claimTtlMs: e.BRIDGE_CLAIM_TTL_MS,
      requestTimeoutMs: e.BRIDGE_REQUEST_TIMEOUT_MS,
      concurrency: e.BRIDGE_CONCURRENCY,
      baseBackoffMs: e.BRIDGE_BASE_BACKOFF_MS,
      breakerThreshold: e.BRIDGE_BREAKER_THRESHOLD,
      breakerHalfOpenMs: e.BRIDGE_BREAKER_HALF_OPEN_MS,
      shutdownGraceMs: e.BRIDGE_SHUTDOWN_GRACE_MS,
      statsIntervalMs: e.BRIDGE_STATS_INTERVAL_MS,
    },
    shadow: {
      sampleRate: e.SHADOW_SAMPLE_RATE,
      timeoutMs: e.SHADOW_TIMEOUT_MS,
      maxInFlight: e.SHADOW_MAX_IN_FLIGHT,
    },
    liveCounts: {
      pollIntervalMs: e.LIVE_COUNTS_POLL_INTERVAL_MS,
      heartbeatMs: e.LIVE_COUNTS_HEARTBEAT_MS,
      maxPerUser: e.LIVE_COUNTS_MAX_PER_USER,
      maxPerLab: e.LIVE_COUNTS_MAX_PER_LAB,
    },
    limits: {
      rateLimitMax: e.RATE_LIMIT_MAX,
      rateLimitWindowMs: e.RATE_LIMIT_WINDOW_MS,
      maxEventLoopDelayMs: e.UNDER_PRESSURE_MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: e.UNDER_PRESSURE_MAX_HEAP_USED_BYTES,
      pressureSampleIntervalMs: e.UNDER_PRESSURE_SAMPLE_INTERVAL_MS,
      retryAfterSeconds: e.UNDER_PRESSURE_RETRY_AFTER_S,
    },
  });
}

function tracingEnabled(e: {
  OTEL_TRACES_EXPORTER?: string | undefined;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
}): boolean {
  if (e.OTEL_TRACES_EXPORTER) return e.OTEL_TRACES_EXPORTER.split(',').some((name) => name.trim() !== 'none');
  return Boolean(e.OTEL_EXPORTER_OTLP_ENDPOINT || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * For the process entry points (server, worker, CLIs): the configuration, or, when a variable is bad,
 * the message naming it on stderr and exit code 1 instead of a stack trace.
 */
export function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
