import type { Knex } from 'knex';

/**
 * A statement run with plain pg through a knex pool: parsed and planned once per connection (a
 * named prepared statement), its text built once, its values passed as they are. For the hot paths,
 * where knex's builder and its per-query binding rewrite cost more than the statement itself.
 */
export interface Statement<A, R> {
  readonly name: string;
  /** The text pg receives, with `$1`, `$2`... placeholders. */
  readonly text: string;
  /** The values for `args`, in placeholder order. */
  values(args: A): unknown[];
  /** Never set: carries the row type. */
  readonly row?: R;
}

/** String literals, quoted names, comments and casts are left as they are; `:name` is a placeholder. */
const PIECES = /'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::|:([A-Za-z_]\w*)/g;

const texts = new Map<string, string>();

/**
 * A statement named `name` (unique: pg keeps prepared statements by name, per connection) from SQL
 * with `:name` placeholders; each name is one placeholder however often it appears. `A` is the
 * arguments, `R` a row of the result.
 */
export function statement<A extends object, R>(name: string, sql: string): Statement<A, R> {
  const order: string[] = [];
  const text = sql.replace(PIECES, (piece, param?: string) => {
    if (param === undefined) return piece;
    const index = order.includes(param) ? order.indexOf(param) : order.push(param) - 1;
    return `$${index + 1}`;
  });
  const known = texts.get(name);
  if (known !== undefined && known !== text) throw new Error(`two different statements are named ${name}`);
  texts.set(name, text);
  return {
    name,
    text,
    values: (args) =>
      order.map((key) => {
        const value = (args as Record<string, unknown>)[key];
        if (value === undefined) throw new Error(`statement ${name}: no value for :${key}`);
        return value;
      }),
  };
}

export interface StatementResult<R> {
  rows: R[];
  rowCount: number | null;
}

interface QueryObject {
  sql: string;
  bindings: unknown[];
  options: { name: string };
  response?: StatementResult<unknown>;
}

/** The parts of knex's client a statement runs through: its pool and its (fault-classifying) query. */
interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  _query(connection: unknown, obj: QueryObject): Promise<QueryObject>;
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Runs `statement` on a connection of `knex`'s pool (or its transaction's connection): the same
 * pool, bounds and failure classification as any knex query, without the builder.
 */
export async function run<A, R>(
  knex: Knex,
  statement: Statement<A, R>,
  args: A,
): Promise<StatementResult<R>> {
  const client = knex.client as unknown as PoolClient;
  const obj: QueryObject = {
    sql: statement.text,
    bindings: statement.values(args),
    options: { name: statement.name },
  };
  const connection = await client.acquireConnection();
  try {
    await client._query(connection, obj);
  } finally {
    await client.releaseConnection(connection);
  }
  client.emit('query-response', obj.response, obj);
  return obj.response as StatementResult<R>;
}

/**
 * A timestamptz in SQL as the JSON of a Date shows it (`2024-05-01T10:20:30.123Z`): formatted by the
 * server, so a reader that only passes it on to clients never parses and reformats it.
 */
export const isoTimeSql = (expression: string) =>
  `to_char(${expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
