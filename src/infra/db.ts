import knexPkg, { type Knex } from 'knex';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { Config } from '../config.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { migrationSource } from '../migrations/index.js';
import { setStatementDeadline } from './db/deadline.js';
import { openEmbedded } from './db/embedded.js';
import { DatabaseUnavailableError, isConnectionError } from './db/faults.js';
import { pgClient, quiet } from './db/pg-client.js';
import { ReplicaReads, type Replica } from './db/replicas.js';
import { connectionSettings } from './db/settings.js';
import './tables.js';

export type { Knex };
export { statementDeadline } from './db/deadline.js';
export { DatabaseUnavailableError } from './db/faults.js';
export { isoTimeSql, run, statement, type Statement, type StatementResult } from './db/statements.js';

export interface Database {
  /** The primary: every write, and every read that must not lag. */
  knex: Knex;
  /**
   * Runs a read that a streaming replica may serve: on a replica that has replayed everything the
   * primary had committed when the read began (waiting DATABASE_REPLICA_WAIT_MS at most), else on
   * the primary. A replica that fails or lags costs latency, never a failed read.
   */
  read: <T>(query: (knex: Knex) => Promise<T>) => Promise<T>;
  /** Reads served so far, by where: what shows that replicas take the load. */
  readonly reads: { primary: number; replica: number };
  kind: 'embedded' | 'postgres';
  monitor: DependencyMonitor;
  /** True when the error means "the database cannot be reached", as opposed to a bad query. */
  isUnavailable(error: unknown): boolean;
  ping(): Promise<boolean>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

const PING_TIMEOUT_MS = 900;

/** True when a migration of this build is not recorded as applied (or nothing is recorded yet). */
async function pendingMigrations(knex: Knex): Promise<boolean> {
  const expected = await migrationSource.getMigrations([]);
  let rows: { name: string }[];
  try {
    ({ rows } = await knex.raw<{ rows: { name: string }[] }>('SELECT name FROM knex_migrations'));
  } catch (error) {
    if ((error as { code?: unknown }).code === '42P01') return true; // undefined_table: a new database
    throw error;
  }
  const applied = new Set(rows.map((row) => row.name));
  return expected.some((migration) => !applied.has(migrationSource.getMigrationName(migration)));
}

export interface DatabaseOptions {
  /** Client-side bound on one query (default DB_QUERY_TIMEOUT_MS); longer for search jobs. */
  queryTimeoutMs?: number;
  /** Server-side bound on one statement (default DB_STATEMENT_TIMEOUT_MS); SEARCH_TIMEOUT_MS for search jobs. */
  statementTimeoutMs?: number;
  poolMax?: number;
  /** Name in the outage log lines. */
  name?: string;
}

export async function createDatabase(
  config: Config,
  logger: Logger,
  options: DatabaseOptions = {},
): Promise<Database> {
  const monitor = new DependencyMonitor(options.name ?? 'database', logger);
  let settings: Knex.PgConnectionConfig | undefined;
  const queryTimeoutMs = options.queryTimeoutMs ?? config.db.queryTimeoutMs;
  let knex: Knex;
  let pglite: PGlite | undefined;
  const replicas: Replica[] = [];
  if (config.database.kind === 'embedded') {
    ({ knex, pglite } = await openEmbedded(config.database.dataDir, logger));
  } else {
    settings = await connectionSettings(
      config.database,
      config,
      options.statementTimeoutMs ?? config.db.statementTimeoutMs,
    );
    const pooled = (connection: Knex.PgConnectionConfig): Knex =>
      knexPkg.knex({
        // A client-side bound too: a database that stops answering (a frozen network, no reset) must
        // not hold a request; it counts as an outage.
        client: pgClient(connection, queryTimeoutMs),
        connection,
        pool: { min: 0, max: options.poolMax ?? config.db.poolMax },
        acquireConnectionTimeout: config.db.connectTimeoutMs + 100,
        ...quiet(logger),
      });
    knex = pooled(settings);
    setStatementDeadline(knex, queryTimeoutMs);
    for (const [index, url] of config.replicas.urls.entries()) {
      const name = `${options.name ?? 'database'} replica ${index + 1}`;
      replicas.push({
        knex: pooled({ ...settings, connectionString: url, host: undefined, port: undefined }),
        monitor: new DependencyMonitor(name, logger),
        replayed: 0n,
        restUntil: 0,
      });
    }
  }
  const routing = new ReplicaReads(knex, replicas, config.replicas.waitMs, logger);
  knex.on('query-response', () => monitor.up());

  const db: Database = {
    knex,
    read: (query) => routing.read(query),
    reads: routing.counts,
    kind: pglite ? 'embedded' : 'postgres',
    monitor,
    isUnavailable(error) {
      if (!isConnectionError(error)) return false;
      // Wrong settings are logged as what they are (one line: what is wrong, what to do).
      const wrong =
        error instanceof DatabaseUnavailableError && error.misconfigured ? error.message : undefined;
      monitor.down(error, wrong);
      return true;
    },
    async ping() {
      try {
        await knex.raw('select 1').timeout(PING_TIMEOUT_MS, { cancel: false });
        return true;
      } catch (error) {
        if (db.isUnavailable(error)) return false;
        throw error;
      }
    },
    async migrate() {
      // A restart finds the schema up to date: one query says so, without the migrator's lock round.
      if (!(await pendingMigrations(knex))) return [];
      if (!settings) {
        const [, applied] = (await knex.migrate.latest({ migrationSource })) as [number, string[]];
        return applied;
      }
      // Migrations may rewrite large tables: their own connection, without the per-query bounds.
      const migrator = knexPkg.knex({
        client: pgClient(settings, undefined),
        connection: { ...settings, statement_timeout: 0 },
        pool: { min: 0, max: 1 },
        ...quiet(logger),
      });
      try {
        const [, applied] = (await migrator.migrate.latest({ migrationSource })) as [number, string[]];
        return applied;
      } finally {
        await migrator.destroy();
      }
    },
    async close() {
      await Promise.all(replicas.map((replica) => replica.knex.destroy()));
      await knex.destroy();
      await pglite?.close();
    },
  };
  return db;
}

/**
 * Creates the database a postgres:// URL names when the server does not have it yet (asking the
 * server's `postgres` database); true when it was created. Used by `migrate`, the tests and the bench.
 */
export async function ensureDatabaseExists(url: string): Promise<boolean> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) return false;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  // A connection lost mid-query also rejects that query, which is what reports it; unheard, the
  // 'error' event would end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    return true;
  } finally {
    await client.end();
  }
}
