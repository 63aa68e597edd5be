import { initTRPC, TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { type Operation, requirePermission } from '../src/auth/permissions.js';
import { AppError, ERROR_TABLE, issuesFromZod, toAppError, UnauthorizedError } from '../src/errors.js';
import type { Context } from './context.js';

const t = initTRPC.context<Context>().create({
  // Never tRPC's NODE_ENV guess: stack frames are internals and stay in the log, in every environment.
  isDev: false,
  errorFormatter({ shape, error }) {
    const internal = error.code === 'INTERNAL_SERVER_ERROR';
    const zodIssues =
      error.cause instanceof ZodError
        ? issuesFromZod(error.cause.issues)
        : error.cause instanceof AppError && error.cause.issues?.length
          ? error.cause.issues
          : undefined;
    return {
      ...shape,
      message: internal ? 'Internal server error' : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        ...(zodIssues ? { issues: zodIssues } : {}),
      },
    };
  },
});

/** Gives domain errors their code from the one table, and an unreachable database its 503. */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (result.ok || result.error.code !== 'INTERNAL_SERVER_ERROR') return result;
  const appError = toAppError(result.error.cause ?? result.error);
  if (appError.code === 'INTERNAL_SERVER_ERROR') return result;
  throw new TRPCError({ code: ERROR_TABLE[appError.code].trpc, message: appError.message, cause: appError });
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

const baseProcedure = t.procedure.use(mapDomainErrors);

/** A procedure that needs a principal; `ctx.principal` is the resolved caller. */
export const authedProcedure = baseProcedure.use(async ({ ctx, next }) => {
  const principal = await ctx.principal();
  if (!principal) throw new UnauthorizedError();
  return next({ ctx: { ...ctx, principal } });
});

/** A procedure for lab-wide staff only (config writes, operator retries): others get FORBIDDEN before their input is read. */
export const labStaffProcedure = (operation: Operation) =>
  authedProcedure.use(({ ctx, next }) => {
    requirePermission(ctx.principal, operation);
    return next();
  });
