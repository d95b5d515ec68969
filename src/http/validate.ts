import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types/index.js';
import type { ParsedUrlQuery } from 'node:querystring';
import YAML from 'yaml';
import { badCursor, badParameters } from '../errors.js';

/**
 * The one validation approach: request bodies and query parameters are checked against the schemas
 * of swagger.yml, the contract clients read, so a limit is stated once. A failure is 400
 * `bad-parameters` with a `detail` naming the parameter and the rule (a parameter whose schema says
 * `x-error: bad-cursor` answers that code instead). Unknown fields are ignored.
 */
export interface RequestRules {
  /** The operation's JSON body, as the schema says; null optional fields come back absent. */
  body(operationId: string, input: unknown): object;
  /** The operation's query parameters, as the schema says (integers converted). */
  query(operationId: string, query: ParsedUrlQuery): object;
}

interface Schema {
  type?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
  'x-error'?: string;
  'x-bytes'?: [number, number];
  'x-name'?: 'display' | 'login';
  properties?: Record<string, Schema>;
  required?: string[];
  $ref?: string;
}
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: Schema;
  $ref?: string;
}
interface Operation {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
type PathItem = { parameters?: Parameter[] } & Partial<Record<(typeof METHODS)[number], Operation>>;
interface Document {
  paths: Record<string, PathItem>;
  components: { parameters?: Record<string, Parameter> };
}

// ISO 8601 date or date-time with an optional zone; years 0001..9999 (PostgreSQL has no year 0).
const ISO_TIME =
  /^(?!0000)\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/i;

// The instants PostgreSQL's timestamptz accepts back from Date.toISOString(): a zone offset can move
// 0001-01-01T00:00+14:00 into year 0000 and 9999-12-31T23:59-14:00 into year 10000, which it refuses.
const EARLIEST = new Date('0001-01-01T00:00:00Z').getTime();
const LATEST = new Date('9999-12-31T23:59:59.999Z').getTime();

function isTime(value: string): boolean {
  if (!ISO_TIME.test(value)) return false;
  // JavaScript rolls 2023-02-30 over to March 2nd: a day the month does not have is refused instead.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const daysInMonth =
    new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeap(year) ? 1 : 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return false;
  const time = new Date(value).getTime();
  return time >= EARLIEST && time <= LATEST;
}

const isLeap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

// Display names are shown to other members: a bidi override (U+202E) or isolate can make a name read
// as someone else's, and control characters (including line breaks) can fake layout. Zero-width
// joiners stay allowed (emoji sequences need them).
const NAME_FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** Query strings carry text only, so their integers are converted; JSON bodies keep their types. */
function createAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: false, verbose: true, coerceTypes });
  ajv.addFormat('date-time', isTime);
  ajv.addFormat('uuid', () => true);
  ajv.addFormat('password', () => true);
  // Bounds in UTF-8 bytes (bcrypt reads at most 72).
  ajv.addKeyword({
    keyword: 'x-bytes',
    type: 'string',
    schemaType: 'array',
    validate: ([min, max]: [number, number], value: string) => {
      const bytes = Buffer.byteLength(value);
      return bytes >= min && bytes <= max;
    },
  });
  // Names: stored and compared in NFC, so one name has one spelling. `display` (shown to others) also
  // refuses NAME_FORBIDDEN; `login` only normalises, so a name is found however it was typed.
  ajv.addKeyword({
    keyword: 'x-name',
    type: 'string',
    schemaType: 'string',
    modifying: true,
    validate: (kind: 'display' | 'login', value: string, _schema?: unknown, data?: DataValidationCxt) => {
      const normal = value.normalize('NFC');
      if (data) (data.parentData as Record<string | number, unknown>)[data.parentDataProperty] = normal;
      return kind !== 'display' || !NAME_FORBIDDEN.test(normal);
    },
  });
  return ajv;
}

function describe(error: ErrorObject, where: string): string {
  const schema = (error.parentSchema ?? {}) as Schema;
  const field = error.instancePath.replace(/^\//, '').replace(/\//g, '.') || where;
  switch (error.keyword) {
    case 'required':
      return `${(error.params as { missingProperty: string }).missingProperty} is required`;
    case 'minLength':
    case 'maxLength':
      return `${field} must be ${schema.minLength ?? 0}..${schema.maxLength ?? '∞'} characters`;
    case 'minimum':
    case 'maximum':
      return `${field} must be ${schema.minimum ?? '-∞'}..${schema.maximum ?? '∞'}`;
    case 'x-name':
      return `${field} must not contain control characters or bidirectional overrides (e.g. U+202E)`;
    case 'x-bytes':
      return `${field} must be ${schema['x-bytes']?.join('..')} bytes in UTF-8`;
    case 'format':
      return schema.format === 'date-time'
        ? `${field} must be an ISO 8601 date or date-time of a real calendar day, years 0001..9999 in UTC`
        : `${field} must be a ${schema.format}`;
    case 'type':
      return `${field} must be ${schema.type === 'integer' ? 'a whole number' : `a ${schema.type}`}`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}

/** PostgreSQL text cannot hold NUL; lone surrogates cannot be encoded in UTF-8. */
function unstorable(values: Record<string, unknown>): string | undefined {
  return Object.entries(values).find(
    ([, value]) => typeof value === 'string' && (value.includes('\0') || !value.isWellFormed()),
  )?.[0];
}
const unstorableDetail = (name: string) => `${name} must not contain NUL or unpaired surrogates`;

interface Compiled {
  body?: ValidateFunction;
  query?: { validate: ValidateFunction; parameters: Parameter[] };
}

function compile(document: Document): Map<string, Compiled> {
  const ajv = createAjv(false);
  ajv.addSchema(document, 'spec');
  const queryAjv = createAjv(true);
  const resolve = (parameter: Parameter): Parameter =>
    parameter.$ref
      ? document.components.parameters![parameter.$ref.replace('#/components/parameters/', '')]!
      : parameter;
  const operations = new Map<string, Compiled>();
  for (const [template, item] of Object.entries(document.paths)) {
    const shared = (item.parameters ?? []).map(resolve);
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation?.operationId) continue;
      const compiled: Compiled = {};
      const json = operation.requestBody?.content['application/json'];
      if (json) {
        const pointer = `#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`;
        compiled.body = ajv.compile({ $ref: `spec${pointer}` });
      }
      const parameters = [...shared, ...(operation.parameters ?? []).map(resolve)].filter(
        (parameter) => parameter.in === 'query',
      );
      if (parameters.length) {
        compiled.query = {
          parameters,
          validate: queryAjv.compile({
            type: 'object',
            required: parameters.filter((p) => p.required).map((p) => p.name),
            properties: Object.fromEntries(parameters.map((p) => [p.name, p.schema])),
          }),
        };
      }
      operations.set(operation.operationId, compiled);
    }
  }
  return operations;
}

/** Null means absent, as in the contract's optional fields. */
function withoutNulls(input: unknown): Record<string, unknown> {
  const source = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  return Object.fromEntries(Object.entries(source).filter(([, value]) => value !== null));
}

const cache = new Map<string, Map<string, Compiled>>();

export function createRequestRules(specText: string): RequestRules {
  let operations = cache.get(specText);
  if (!operations) {
    operations = compile(YAML.parse(specText) as Document);
    cache.set(specText, operations);
  }
  const find = (operationId: string): Compiled => {
    const compiled = operations.get(operationId);
    if (!compiled) throw new Error(`swagger.yml has no operation ${operationId}`);
    return compiled;
  };
  return {
    body(operationId, input) {
      const validate = find(operationId).body;
      if (!validate) throw new Error(`swagger.yml documents no JSON body for ${operationId}`);
      const values = withoutNulls(input);
      if (!validate(values)) throw badParameters(describe(validate.errors![0]!, 'body'));
      const refused = unstorable(values);
      if (refused !== undefined) throw badParameters(unstorableDetail(refused));
      return values;
    },
    query(operationId, query) {
      const rules = find(operationId).query;
      if (!rules) throw new Error(`swagger.yml documents no query parameters for ${operationId}`);
      // Only declared parameters are read; an empty value is an absent one.
      const values: Record<string, unknown> = {};
      for (const { name } of rules.parameters) {
        const value = query[name];
        if (value !== undefined && value !== '') values[name] = value;
      }
      const refuse = (name: string, detail: string) => {
        const parameter = rules.parameters.find((p) => p.name === name);
        return parameter?.schema['x-error'] === 'bad-cursor' ? badCursor() : badParameters(detail);
      };
      if (!rules.validate(values)) {
        const error = rules.validate.errors![0]!;
        throw refuse(error.instancePath.replace(/^\//, ''), describe(error, 'query'));
      }
      const refused = unstorable(values);
      if (refused !== undefined) throw refuse(refused, unstorableDetail(refused));
      return values;
    },
  };
}
