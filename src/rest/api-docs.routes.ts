import fastifySwagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { OpenAPIV3 } from 'openapi-types';
import { z } from 'zod';
import { ERROR_TABLE, type ErrorBody, type ErrorCode } from '../errors.js';

import { DOCS_PREFIX, OPENAPI_PATH } from '../http/route-table.js';

/** The error envelope of the service's own answers, as the error handler writes it (`errorBody`). */
const errorEnvelope = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_TABLE) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      issues: z
        .array(
          z.object({
            path: z.string().describe('Dotted path into the input, e.g. `configs.1.field_id`'),
            message: z.string(),
          }),
        )
        .optional(),
    }),
  })
  .describe('The error envelope of the service');
// A change to ErrorBody that this schema does not follow fails the typecheck.
const _envelopeMatchesErrorBody: z.infer<typeof errorEnvelope> extends ErrorBody ? true : never = true;
void _envelopeMatchesErrorBody;

const ERROR_SCHEMA_NAME = 'ErrorEnvelope';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * The shim's own operations: its /api-v3 routes, each of which validates its input with a schema.
 * Everything else the app serves (tRPC, health, metrics, the docs, the proxied legacy paths, the
 * 405 answers to other methods on the shim's paths) stays out of the document.
 */
function isShimOperation(url: string, schema: unknown): boolean {
  return url.startsWith('/api-v3/') && !url.includes('*') && url !== OPENAPI_PATH && schema !== undefined;
}

const transform: SwaggerTransform = (input) =>
  isShimOperation(input.url, input.schema)
    ? jsonSchemaTransform(input)
    : { schema: { hide: true }, url: input.url };

/** Gives every operation the error envelope as its `default` answer. */
const transformObject: SwaggerTransformObject = (documentObject) => {
  if (!('openapiObject' in documentObject)) throw new Error('the shim is described in OpenAPI 3 only');
  const document = documentObject.openapiObject as OpenAPIV3.Document;
  const errorResponse: OpenAPIV3.ResponseObject = {
    description:
      'An error of the service: 400 invalid input (issues name each problem), 401 no principal, 409 conflict, 413 body over 1 MiB, 503 database unavailable…',
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ERROR_SCHEMA_NAME}` } } },
  };
  const paths: OpenAPIV3.PathsObject = {};
  for (const [url, item] of Object.entries(document.paths ?? {})) {
    const withErrors: OpenAPIV3.PathItemObject = { ...item };
    for (const method of HTTP_METHODS) {
      const operation = item?.[method];
      if (operation)
        withErrors[method] = { ...operation, responses: { ...operation.responses, default: errorResponse } };
    }
    paths[url] = withErrors;
  }
  return {
    ...document,
    paths,
    components: {
      ...document.components,
      schemas: {
        ...document.components?.schemas,
        [ERROR_SCHEMA_NAME]: z.toJSONSchema(errorEnvelope, {
          target: 'openapi-3.0',
        }) as OpenAPIV3.SchemaObject,
      },
    },
  };
};

/**
 * The /api-v3 shim's OpenAPI 3 document, generated from the zod schemas the routes validate with,
 * at /api-v3/openapi.json, and Swagger UI at /docs. Register before the shim's routes: the document
 * is built from the routes registered after it.
 */
export const apiDocs = fp(
  async (app) => {
    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Missing Details: the /api-v3 REST shim',
          version: '3.0.0',
          description:
            'The REST paths of the old lab system that the Missing Details service answers itself (snake_case JSON). ' +
            'Every other /api-v3 path is relayed to the legacy system unchanged and is not described here.',
        },
        tags: [
          { name: 'templates', description: 'The catalog of missing-detail templates' },
          { name: 'configs', description: "A lab's placeholder configuration" },
          { name: 'lab-fields', description: 'Missing details recorded at runtime, and their resolution' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description:
                'A JWT with the claims lab_id, user_id, role (lab_user | doctor), exp and optionally org_id',
            },
            legacySession: {
              type: 'apiKey',
              in: 'cookie',
              name: 'sessionid',
              description: "The legacy system's session cookie, checked with legacy PY-3",
            },
          },
        },
        security: [{ bearerAuth: [] }, { legacySession: [] }],
      },
      transform,
      transformObject,
    });
    await app.register(fastifySwaggerUi, {
      routePrefix: DOCS_PREFIX,
      uiConfig: { docExpansion: 'list', deepLinking: true },
    });
    app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'api-docs' },
);
