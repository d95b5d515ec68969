import { badCursor, badParameters } from '../errors.js';

/**
 * The one validation approach: a route declares the fields it reads with these rules and gets back
 * typed values, or a 400 `bad-parameters`. Unknown fields are ignored.
 */
interface TextRule {
  kind: 'text';
  min: number;
  max: number;
  /** Bounds in UTF-8 bytes (bcrypt reads at most 72). */
  minBytes?: number;
  maxBytes?: number;
  optional?: boolean;
}
interface IntRule {
  kind: 'int';
  min: number;
  max: number;
  optional?: boolean;
}
interface TimeRule {
  kind: 'time';
  optional?: boolean;
}
type Rule = TextRule | IntRule | TimeRule;

type Value<R extends Rule> = R extends IntRule ? number : R extends TimeRule ? Date : string;
export type Parsed<S extends Record<string, Rule>> = {
  [K in keyof S]: S[K] extends { optional: true } ? Value<S[K]> | undefined : Value<S[K]>;
};

export const text = (min: number, max: number, extra: Partial<TextRule> = {}): TextRule => ({
  kind: 'text',
  min,
  max,
  ...extra,
});
export const int = (min: number, max: number, extra: Partial<IntRule> = {}): IntRule => ({
  kind: 'int',
  min,
  max,
  ...extra,
});
export const time = (): TimeRule => ({ kind: 'time' });
/** The field may be absent (or null). */
export const optional = <R extends Rule>(rule: R): R & { optional: true } => ({ ...rule, optional: true });

const INTEGER = /^-?\d{1,15}$/;
// ISO 8601 date or date-time, with an optional zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/i;

/** Code points, not UTF-16 units: "1..255 chars" means what a person counts. */
function length(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

function check(rule: Rule, value: unknown): unknown {
  switch (rule.kind) {
    case 'text': {
      // PostgreSQL text cannot hold NUL; lone surrogates cannot be encoded in UTF-8.
      if (typeof value !== 'string' || value.includes('\0') || !value.isWellFormed()) throw badParameters();
      const size = length(value);
      if (size < rule.min || size > rule.max) throw badParameters();
      if (rule.minBytes !== undefined || rule.maxBytes !== undefined) {
        const bytes = Buffer.byteLength(value);
        if (bytes < (rule.minBytes ?? 0) || bytes > (rule.maxBytes ?? Infinity)) throw badParameters();
      }
      return value;
    }
    case 'int': {
      const number =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && INTEGER.test(value)
            ? Number(value)
            : NaN;
      if (!Number.isInteger(number) || number < rule.min || number > rule.max) throw badParameters();
      return number;
    }
    case 'time': {
      if (typeof value !== 'string' || !ISO_TIME.test(value)) throw badParameters();
      const date = new Date(value);
      if (Number.isNaN(date.getTime())) throw badParameters();
      return date;
    }
  }
}

export function parse<S extends Record<string, Rule>>(input: unknown, schema: S): Parsed<S> {
  const source = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [name, rule] of Object.entries(schema)) {
    const value = source[name];
    if (value === undefined || value === null) {
      if (!rule.optional) throw badParameters();
      result[name] = undefined;
      continue;
    }
    result[name] = check(rule, value);
  }
  return result as Parsed<S>;
}

/**
 * The raw `from` of a paged read: absent or empty is the first page; anything but one string is an
 * unusable cursor (400 `bad-cursor`). Each module decodes its own cursors.
 */
export function cursorParam(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw badCursor();
  return value;
}
