import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import type { Response } from 'supertest';
import { projectRoot } from '../../src/infra/paths.js';

/**
 * Checks a response against swagger.yml: the path, method and status must be documented, and a JSON
 * body must match the documented schema. Every request made through test/support/app.ts runs this.
 */
interface ResponseObject {
  $ref?: string;
  content?: Record<string, unknown>;
}
interface Operation {
  responses: Record<string, ResponseObject>;
}
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, ResponseObject> };
};

const document = YAML.parse(fs.readFileSync(path.join(projectRoot(), 'swagger.yml'), 'utf8')) as Document;
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
ajv.addSchema(document, 'spec');

// Served by the docs module, deliberately outside the API contract.
const UNDOCUMENTED = [/^\/docs(\/.*)?$/, /^\/swagger\.yml$/, /^\/favicon\.png$/];

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp('^' + template.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));

const validators = new Map<string, ValidateFunction>();
function validator(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `spec#${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

const escape = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

export function assertMatchesSpec(method: string, url: string, res: Response): void {
  const pathname = new URL(url, 'http://x').pathname;
  const where = `${method.toUpperCase()} ${pathname} → ${res.status}`;
  const found = templates.find(({ pattern }) => pattern.test(pathname));
  const operation = found ? document.paths[found.template]?.[method.toLowerCase()] : undefined;

  if (!operation) {
    if (UNDOCUMENTED.some((pattern) => pattern.test(pathname))) return;
    // Unknown routes and methods still answer the documented error body.
    if (res.status < 400) throw new Error(`${where}: not documented in swagger.yml`);
    const validate = validator('/components/schemas/Error');
    if (!validate(res.body)) throw new Error(`${where}: ${ajv.errorsText(validate.errors)}`);
    return;
  }

  const status = operation.responses[String(res.status)] ? String(res.status) : 'default';
  let response = operation.responses[status];
  if (!response) throw new Error(`${where}: status not documented in swagger.yml`);
  let base = `/paths/${escape(found!.template)}/${method.toLowerCase()}/responses/${status}`;
  if (response.$ref) {
    const name = response.$ref.replace('#/components/responses/', '');
    response = document.components.responses[name]!;
    base = `/components/responses/${escape(name)}`;
  }
  const contentType = res.headers['content-type']?.split(';')[0];
  if (!response.content) {
    if (res.text) throw new Error(`${where}: swagger.yml documents no body, got ${contentType}`);
    return;
  }
  if (!contentType || !(contentType in response.content)) {
    throw new Error(`${where}: content type ${contentType} not documented`);
  }
  if (contentType !== 'application/json') return;
  const validate = validator(`${base}/content/${escape('application/json')}/schema`);
  if (!validate(res.body)) {
    throw new Error(
      `${where}: body does not match swagger.yml: ${ajv.errorsText(validate.errors)}\n${res.text}`,
    );
  }
}
