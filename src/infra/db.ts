import fs from 'node:fs';
import net from 'node:net';
import knexPkg, { type Knex } from 'knex';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { Config, DatabaseConfig } from '../config.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { migrationSource } from '../migrations/index.js';
import './tables.js';

export type { Knex };

export interface Database {
  knex: Knex;
  kind: 'embedded' | 'postgres';
  monitor: DependencyMonitor;
  /** True when the error means "the database cannot be reached", as opposed to a bad query. */
  isUnavailable(error: unknown): boolean;
  ping(): Promise<boolean>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

const PING_TIMEOUT_MS = 900;

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

const CONNECTION_ERROR_TEXT =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Knex: Timeout acquiring a connection|not queryable|Connection refused|connect ECONNREFUSED|socket hang up/i;

function isConnectionError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (typeof e !== 'object') return false;
    const { code, message, name, cause } = e as {
      code?: unknown;
      message?: unknown;
      name?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || code.startsWith('08'))) return true;
    if (name === 'KnexTimeoutError') return true;
    if (typeof message === 'string' && CONNECTION_ERROR_TEXT.test(message)) return true;
    if (Array.isArray((e as { errors?: unknown }).errors)) {
      return (e as { errors: unknown[] }).errors.some(isConnectionError);
    }
    e = cause;
  }
  return false;
}

/** POSTGRES_HOSTS is a list: the first host that accepts a TCP connection wins. */
async function firstReachable(hosts: string[], port: number, timeoutMs: number): Promise<string> {
  for (const host of hosts) {
    const reachable = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port, timeout: timeoutMs });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('connect', () => done(true));
      socket.once('timeout', () => done(false));
      socket.once('error', () => done(false));
    });
    if (reachable) return host;
  }
  // None answers now: keep the first, so the service comes up and recovers when it does.
  return hosts[0] ?? 'localhost';
}

async function connectionSettings(
  database: Exclude<DatabaseConfig, { kind: 'embedded' }>,
  config: Config,
  queryTimeoutMs: number,
  statementTimeoutMs: number,
): Promise<Knex.PgConnectionConfig> {
  const common = {
    connectionTimeoutMillis: config.db.connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    // A client-side bound too: a database that stops answering (a frozen network, no reset) must not
    // hold a request; it counts as an outage.
    query_timeout: queryTimeoutMs,
    keepAlive: true,
    application_name: 'messenger-api',
  };
  if (database.kind === 'url') return { connectionString: database.url, ...common };
  const host = await firstReachable(database.hosts, database.port, config.db.connectTimeoutMs);
  return {
    host,
    port: database.port,
    database: database.database,
    user: database.user,
    password: database.password,
    ...common,
  };
}

async function openEmbedded(dataDir: string, logger: Logger): Promise<{ knex: Knex; pglite: PGlite }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  const { unaccent } = await import('@electric-sql/pglite/contrib/unaccent');
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  if (!dataDir.startsWith('memory://')) fs.mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir, { extensions: { pg_trgm, unaccent } });
  const pgConfig = createPgConfig(pglite);
  const knex = knexPkg.knex({
    client: 'pg',
    // A provider function: knex deep-clones a plain connection object, which would copy PGlite itself.
    connection: () => pgConfig as unknown as Knex.PgConnectionConfig,
    pool: { min: 1, max: 1 },
    acquireConnectionTimeout: 60_000,
    ...quiet(logger),
  });
  return { knex, pglite };
}

/**
 * What every knex instance shares: its own messages would be plain text on stdout, so they go to the
 * JSON log (the monitor reports outages); and a failed query's error keeps the driver's message
 * instead of the SQL with its values filled in (password and token hashes, message text).
 */
function quiet(logger: Logger): Pick<Knex.Config, 'log' | 'compileSqlOnError'> {
  return {
    compileSqlOnError: false,
    log: {
      warn: (message: unknown) => logger.debug({ knex: String(message) }, 'knex warning'),
      error: (message: unknown) => logger.debug({ knex: String(message) }, 'knex error'),
      deprecate: (message: unknown) => logger.debug({ knex: String(message) }, 'knex deprecation'),
      debug: (message: unknown) => logger.trace({ knex: String(message) }, 'knex debug'),
    },
  };
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
  let knex: Knex;
  let pglite: PGlite | undefined;
  if (config.database.kind === 'embedded') {
    ({ knex, pglite } = await openEmbedded(config.database.dataDir, logger));
  } else {
    settings = await connectionSettings(
      config.database,
      config,
      options.queryTimeoutMs ?? config.db.queryTimeoutMs,
      options.statementTimeoutMs ?? config.db.statementTimeoutMs,
    );
    knex = knexPkg.knex({
      client: 'pg',
      connection: settings,
      pool: { min: 0, max: options.poolMax ?? config.db.poolMax },
      acquireConnectionTimeout: config.db.connectTimeoutMs + 100,
      ...quiet(logger),
    });
  }
  knex.on('query-response', () => monitor.up());

  const db: Database = {
    knex,
    kind: pglite ? 'embedded' : 'postgres',
    monitor,
    isUnavailable(error) {
      if (!isConnectionError(error)) return false;
      monitor.down(error);
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
      if (!settings) {
        const [, applied] = (await knex.migrate.latest({ migrationSource })) as [number, string[]];
        return applied;
      }
      // Migrations may rewrite large tables: their own connection, without the per-query bounds.
      const migrator = knexPkg.knex({
        client: 'pg',
        connection: { ...settings, query_timeout: undefined, statement_timeout: 0 },
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
