import type { Knex } from 'knex';

/** Per API database: how long an INSERT may still start committing after it was sent. */
const insertWindows = new WeakMap<Knex, number>();

/** Time left for the commit and the answer to reach a client still waiting for it. */
const DEADLINE_MARGIN_MS = 150;

/** Write statements on `knex` check a deadline this far below the client's bound on a query. */
export function setStatementDeadline(knex: Knex, queryTimeoutMs: number): void {
  insertWindows.set(knex, Math.max(queryTimeoutMs - DEADLINE_MARGIN_MS, 0));
}

/**
 * The deadline a write statement checks itself (`clock_timestamp() < deadline`): past it, a
 * statement that reaches the server late (held by the network after the client gave up and answered
 * 503) writes nothing. Null on the embedded database (no network in between). It compares the API's
 * clock with the server's: they must agree to well within DB_QUERY_TIMEOUT_MS (as NTP keeps them).
 */
export function statementDeadline(knex: Knex): Date | null {
  const window = insertWindows.get(knex);
  return window === undefined ? null : new Date(Date.now() + window);
}
