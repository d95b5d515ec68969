import fs from 'node:fs';
import net from 'node:net';
import knexPkg, { type Knex } from 'knex';
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
  /Connection terminated|timeout exceeded when trying to connect|Knex: Timeout acquiring a connection|not queryable|Connection refused|connect ECONNREFUSED|socket hang up/i;

export function isConnectionError(error: unknown): boolean {
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
): Promise<Knex.PgConnectionConfig> {
  const common = {
    connectionTimeoutMillis: config.db.connectTimeoutMs,
    statement_timeout: config.db.statementTimeoutMs,
    // A client-side bound too: a peer that stops answering must not hold a request for ever.
    query_timeout: config.db.statementTimeoutMs + 1000,
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

async function openEmbedded(dataDir: string): Promise<{ knex: Knex; pglite: PGlite }> {
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
  });
  return { knex, pglite };
}

export async function createDatabase(config: Config, logger: Logger): Promise<Database> {
  const monitor = new DependencyMonitor('database', logger);
  let knex: Knex;
  let pglite: PGlite | undefined;
  if (config.database.kind === 'embedded') {
    ({ knex, pglite } = await openEmbedded(config.database.dataDir));
  } else {
    const connection = await connectionSettings(config.database, config);
    knex = knexPkg.knex({
      client: 'pg',
      connection,
      pool: { min: 0, max: config.db.poolMax },
      acquireConnectionTimeout: config.db.connectTimeoutMs + 100,
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
        await knex.raw('select 1');
        return true;
      } catch (error) {
        if (db.isUnavailable(error)) return false;
        throw error;
      }
    },
    async migrate() {
      const [, applied] = (await knex.migrate.latest({ migrationSource })) as [number, string[]];
      return applied;
    },
    async close() {
      await knex.destroy();
      await pglite?.close();
    },
  };
  return db;
}
