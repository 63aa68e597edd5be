import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import type { z } from 'zod';

/** The codes of the contract's error envelope, shared by the REST shim and tRPC. */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL_SERVER_ERROR'
  | 'BAD_GATEWAY'
  | 'SERVICE_UNAVAILABLE'
  | 'GATEWAY_TIMEOUT';

/** The one table mapping the vocabulary to HTTP status and tRPC code. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, { status: number; trpc: TRPC_ERROR_CODE_KEY }>> = {
  BAD_REQUEST: { status: 400, trpc: 'BAD_REQUEST' },
  UNAUTHORIZED: { status: 401, trpc: 'UNAUTHORIZED' },
  FORBIDDEN: { status: 403, trpc: 'FORBIDDEN' },
  NOT_FOUND: { status: 404, trpc: 'NOT_FOUND' },
  METHOD_NOT_ALLOWED: { status: 405, trpc: 'METHOD_NOT_SUPPORTED' },
  CONFLICT: { status: 409, trpc: 'CONFLICT' },
  PAYLOAD_TOO_LARGE: { status: 413, trpc: 'PAYLOAD_TOO_LARGE' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, trpc: 'UNSUPPORTED_MEDIA_TYPE' },
  TOO_MANY_REQUESTS: { status: 429, trpc: 'TOO_MANY_REQUESTS' },
  INTERNAL_SERVER_ERROR: { status: 500, trpc: 'INTERNAL_SERVER_ERROR' },
  BAD_GATEWAY: { status: 502, trpc: 'BAD_GATEWAY' },
  SERVICE_UNAVAILABLE: { status: 503, trpc: 'SERVICE_UNAVAILABLE' },
  GATEWAY_TIMEOUT: { status: 504, trpc: 'GATEWAY_TIMEOUT' },
};

const CODE_BY_STATUS = new Map<number, ErrorCode>(
  Object.entries(ERROR_TABLE).map(([code, { status }]) => [status, code as ErrorCode]),
);

const CODE_BY_TRPC = new Map<string, ErrorCode>(
  Object.entries(ERROR_TABLE).map(([code, { trpc }]) => [trpc, code as ErrorCode]),
);

export interface ErrorIssue {
  /** Dotted path into the input, e.g. `configs.1.field_id`; empty for the input as a whole. */
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: ErrorIssue[] };
}

export class AppError extends Error {
  readonly issues: ErrorIssue[] | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { issues?: ErrorIssue[]; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.issues = options.issues;
    this.headers = options.headers;
  }
  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, issues: ErrorIssue[] = []) {
    super('BAD_REQUEST', message, { issues });
  }
}
export class UnauthorizedError extends AppError {
  constructor(message = 'Authentication required: send a valid bearer token or session cookie') {
    super('UNAUTHORIZED', message);
  }
}
export class ForbiddenError extends AppError {
  constructor(message = 'Not allowed') {
    super('FORBIDDEN', message);
  }
}
export class ConflictError extends AppError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}
export class BadGatewayError extends AppError {
  constructor(message = 'The legacy system could not be reached', cause?: unknown) {
    super('BAD_GATEWAY', message, { cause });
  }
}
export class GatewayTimeoutError extends AppError {
  constructor(message = 'The legacy system did not answer in time', cause?: unknown) {
    super('GATEWAY_TIMEOUT', message, { cause });
  }
}
export class ServiceUnavailableError extends AppError {
  constructor(message = 'The service is temporarily unavailable', cause?: unknown) {
    super('SERVICE_UNAVAILABLE', message, { cause });
  }
}

/** Turns zod issues into the envelope's dotted, snake_case-as-sent paths. */
export function issuesFromZod(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): ErrorIssue[] {
  return issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join('.'),
    message: issue.message,
  }));
}

const DB_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

function errorCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && DB_UNAVAILABLE_CODES.has(code)) return code;
    // The pool had no free connection within its acquire timeout: the database is saturated or gone.
    if ((current as { name?: unknown }).name === 'KnexTimeoutError') return 'POOL_TIMEOUT';
    // knex ends a transaction whose connection died while it started (e.g. ECONNRESET on its first
    // statement) and rejects the callback's next query with this message, without the cause.
    const message = (current as { message?: unknown }).message;
    if (typeof message === 'string' && message.startsWith('Transaction query already complete')) {
      return 'TRANSACTION_CONNECTION_LOST';
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Maps anything thrown to the vocabulary: typed errors keep their code, Fastify's own client
 * errors keep their status, an unreachable database is a 503, and everything else is a 500 whose
 * message never echoes internals.
 */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (errorCodeOf(error)) {
    return new ServiceUnavailableError('The database is unavailable; try again shortly', error);
  }
  const statusCode = (error as { statusCode?: unknown })?.statusCode;
  // A library's gateway failure keeps its status, but not its message: it may name an internal address.
  if (statusCode === 502) return new BadGatewayError(undefined, error);
  if (statusCode === 503) return new ServiceUnavailableError(undefined, error);
  if (statusCode === 504) return new GatewayTimeoutError(undefined, error);
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const code = CODE_BY_STATUS.get(statusCode) ?? 'BAD_REQUEST';
    const raw = (error as { message?: unknown }).message;
    const message = typeof raw === 'string' && raw ? raw : code;
    return new AppError(code, message, { cause: error });
  }
  const trpcCode = (error as { code?: unknown })?.code;
  if (typeof trpcCode === 'string' && CODE_BY_TRPC.has(trpcCode) && trpcCode !== 'INTERNAL_SERVER_ERROR') {
    return new AppError(CODE_BY_TRPC.get(trpcCode)!, (error as Error).message, { cause: error });
  }
  return new AppError('INTERNAL_SERVER_ERROR', 'Internal server error', { cause: error });
}

export function errorBody(error: AppError): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.issues && error.issues.length > 0 ? { issues: error.issues } : {}),
    },
  };
}
