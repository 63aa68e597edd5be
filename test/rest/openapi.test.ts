import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIV3 } from 'openapi-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULES } from '../../src/services/templates.service.js';
import { startTestApp, type TestApp } from '../support/fixtures.js';

const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';

let t: TestApp;
let document: OpenAPIV3.Document;

beforeAll(async () => {
  t = await startTestApp();
  const res = await t.app.inject({ url: '/api-v3/openapi.json' });
  expect(res.statusCode).toBe(200);
  document = res.json();
});
afterAll(async () => {
  await t.close();
});

function operation(path: string, method: 'get' | 'post' | 'patch'): OpenAPIV3.OperationObject {
  const found = document.paths[path]?.[method];
  if (!found) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
  return found;
}

function queryParameter(op: OpenAPIV3.OperationObject, name: string): OpenAPIV3.ParameterObject | undefined {
  return (op.parameters as OpenAPIV3.ParameterObject[] | undefined)?.find(
    (p) => p.in === 'query' && p.name === name,
  );
}

function jsonSchema(content: { content?: Record<string, OpenAPIV3.MediaTypeObject> } | undefined) {
  return content?.content?.['application/json']?.schema as OpenAPIV3.SchemaObject | undefined;
}

describe('GET /api-v3/openapi.json', () => {
  it('serves, without a principal, an OpenAPI 3 document that an independent validator accepts', async () => {
    const res = await t.app.inject({ url: '/api-v3/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(document.openapi).toMatch(/^3\./);
    // swagger-parser dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeTruthy();
  });

  it('describes the five operations of the REST shim', () => {
    expect(operation(TEMPLATES, 'get').summary).toBeTruthy();
    expect(operation(CONFIGS, 'get').summary).toBeTruthy();
    expect(operation(CONFIGS, 'post').summary).toBeTruthy();
    expect(operation(LAB_FIELDS, 'get').summary).toBeTruthy();
    expect(operation(LAB_FIELDS, 'patch').summary).toBeTruthy();
  });

  it('takes the parameters and bodies from the zod schemas the routes validate with', () => {
    const templates = operation(TEMPLATES, 'get');
    expect(queryParameter(templates, 'module')?.schema).toMatchObject({ enum: [...MODULES] });
    expect((queryParameter(templates, 'include_inactive')!.schema as OpenAPIV3.SchemaObject).enum).toEqual(
      expect.arrayContaining(['true', 'false', '1', '0']),
    );

    const list = operation(LAB_FIELDS, 'get');
    for (const name of ['is_resolved', 'user_details_id', 'field_id', 'created_from', 'limit', 'cursor']) {
      expect(queryParameter(list, name), name).toBeDefined();
    }

    const save = jsonSchema(operation(CONFIGS, 'post').requestBody as OpenAPIV3.RequestBodyObject);
    const items = save?.properties?.configs as OpenAPIV3.ArraySchemaObject;
    expect(items).toMatchObject({ type: 'array', minItems: 1, maxItems: 50 });
    expect(items.items).toMatchObject({ required: ['field_id'], additionalProperties: false });
    const saveHeaders = (operation(CONFIGS, 'post').parameters as OpenAPIV3.ParameterObject[]).filter(
      (p) => p.in === 'header',
    );
    expect(saveHeaders.map((p) => p.name)).toEqual(['idempotency-key']);

    const resolve = jsonSchema(operation(LAB_FIELDS, 'patch').requestBody as OpenAPIV3.RequestBodyObject);
    expect(resolve?.required).toEqual(expect.arrayContaining(['ids', 'is_resolved']));
    expect(resolve?.properties?.ids).toMatchObject({ type: 'array', minItems: 1, maxItems: 5000 });
  });

  it('describes the answers in snake_case, and the error envelope as every operation’s default answer', () => {
    const responses = operation(LAB_FIELDS, 'get').responses;
    const page = jsonSchema(responses['200'] as OpenAPIV3.ResponseObject);
    expect(Object.keys(page?.properties ?? {})).toEqual(['results', 'next_cursor']);
    const row = (page!.properties!.results as OpenAPIV3.ArraySchemaObject).items as OpenAPIV3.SchemaObject;
    expect(row.properties).toHaveProperty('resolved_by_lab_user_id');
    expect(
      jsonSchema(operation(CONFIGS, 'post').responses['200'] as OpenAPIV3.ResponseObject)?.properties,
    ).toHaveProperty('entity_creations');

    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of ['get', 'post', 'patch'] as const) {
        const op = item?.[method];
        if (!op) continue;
        expect(op.responses.default, `${method} ${path}`).toMatchObject({
          content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } },
        });
      }
    }
    const envelope = document.components?.schemas?.ErrorEnvelope as OpenAPIV3.SchemaObject;
    const error = envelope.properties?.error as OpenAPIV3.SchemaObject;
    expect(error.required).toEqual(['code', 'message']);
    expect((error.properties!.code as OpenAPIV3.SchemaObject).enum).toContain('BAD_REQUEST');
  });

  it('describes the bearer token and the legacy session cookie as the security schemes of every operation', () => {
    expect(document.components?.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }),
      legacySession: expect.objectContaining({ type: 'apiKey', in: 'cookie', name: 'sessionid' }),
    });
    expect(document.security).toEqual([{ bearerAuth: [] }, { legacySession: [] }]);
  });

  it('leaves out the 405 answers to the other methods on the shim’s paths', () => {
    expect(Object.keys(document.paths[TEMPLATES]!)).toEqual(['get']);
    expect(Object.keys(document.paths[CONFIGS]!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(document.paths[LAB_FIELDS]!).sort()).toEqual(['get', 'patch']);
  });

  it('leaves out the proxied legacy paths, tRPC, health, metrics and the docs themselves', () => {
    const paths = Object.keys(document.paths);
    expect(paths.length).toBeGreaterThanOrEqual(3);
    for (const path of paths) {
      expect(path).toMatch(/^\/api-v3\/[\w/.-]+$/);
    }
    for (const absent of [
      '/api-v3/registration/patients/new',
      '/api-v3/finance/bill/{labBillId}/update',
      '/api-v3/reports',
      '/api-v3/openapi.json',
      '/*',
      '/',
    ]) {
      expect(paths).not.toContain(absent);
    }
  });
});
