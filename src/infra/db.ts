import fs from 'node:fs';
import { createRequire } from 'node:module';
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

/**
 * The database could not be reached, or did not answer in time: an outage (503, a job retried), never
 * a bad query. Raised where it happens — while opening a connection, or when a query's deadline
 * passes on an open one (or the connection dies under it) — so no driver message text is matched.
 */
export class DatabaseUnavailableError extends Error {
  /** The server answered, but refuses these settings: the message says what to change. */
  readonly misconfigured: boolean;

  constructor(
    readonly phase: 'connect' | 'query',
    message: string,
    options?: { cause?: unknown; misconfigured?: boolean },
  ) {
    super(message, options);
    this.misconfigured = options?.misconfigured ?? false;
    this.name = 'DatabaseUnavailableError';
  }
}

/** Errors of the socket itself (no answer from the server at all). */
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** What the server says when it is going away or cannot take the connection now. */
const SERVER_UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

function isConnectionError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (typeof e !== 'object') return false;
    if (e instanceof DatabaseUnavailableError) return true;
    const { code, name, cause } = e as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof code === 'string') {
      if (SOCKET_ERROR_CODES.has(code) || SERVER_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))
        return true;
    }
    // Every pooled connection busy for longer than a connection attempt may take: nothing answers.
    if (name === 'KnexTimeoutError') return true;
    if (Array.isArray((e as { errors?: unknown }).errors)) {
      return (e as { errors: unknown[] }).errors.some(isConnectionError);
    }
    e = cause;
  }
  return false;
}

/**
 * The server answered the connection attempt, but with a refusal only a change of settings fixes:
 * one line saying what is wrong and what to do, instead of a driver message.
 */
function misconfiguration(error: unknown, settings: Knex.PgConnectionConfig): string | undefined {
  const code = (error as { code?: unknown }).code;
  let database = settings.database;
  let user = settings.user;
  if (settings.connectionString) {
    const url = new URL(settings.connectionString);
    database = decodeURIComponent(url.pathname.slice(1)) || undefined;
    user = decodeURIComponent(url.username) || undefined;
  }
  const fix = 'set DATABASE_URL (or POSTGRES_*)';
  switch (code) {
    case '3D000': // invalid_catalog_name
      return `database "${database}" does not exist: run \`make migrate\` (it creates it), or ${fix}`;
    case '28000': // invalid_authorization_specification: unknown role, or no pg_hba.conf entry
      return `role "${user}" was rejected by the server (it does not exist, or pg_hba.conf refuses it): create it, or ${fix}`;
    case '28P01': // invalid_password
      return `password authentication failed for role "${user}": ${fix} with the right password`;
    case '42501': // insufficient_privilege (e.g. CONNECT revoked)
      return `role "${user}" may not connect to database "${database}": grant CONNECT, or ${fix}`;
    default:
      return undefined;
  }
}

interface PgConnection {
  __knex__disposed?: unknown;
  _ended?: boolean;
  _queryable?: boolean;
  connection?: { stream?: { destroyed?: boolean; destroy(): void; resetAndDestroy?: () => void } };
}

/** How often a running statement checks that its client is still connected (ms). */
const CLIENT_CHECK_INTERVAL_MS = 250;

type RawQuery = (this: Knex.Client, connection: PgConnection, obj: unknown) => Promise<unknown>;

const PgClient = createRequire(import.meta.url)('knex/lib/dialects/postgres/index.js') as typeof Knex.Client;
const pgQuery = (PgClient.prototype as unknown as { _query: RawQuery })._query;

/**
 * knex's pg client, with failures classified where they happen: any failure while opening a
 * connection is an outage; a query unanswered by its deadline is one too, and its connection is
 * destroyed rather than reused (a later query would queue behind the unanswered one, which may still
 * run when the network delivers it: the statements themselves carry a deadline for that).
 */
function pgClient(settings: Knex.PgConnectionConfig, queryTimeoutMs: number | undefined): typeof Knex.Client {
  return class extends PgClient {
    override async acquireRawConnection(): Promise<unknown> {
      try {
        const connection = (await super.acquireRawConnection()) as pg.Client;
        // A statement waiting (on a lock, say) when its client has given up and reset the
        // connection is cancelled, not committed later (PostgreSQL 14+; elsewhere nothing changes).
        const bound = setTimeout(
          () => (connection as unknown as PgConnection).connection?.stream?.destroy(),
          settings.connectionTimeoutMillis ?? 1000,
        );
        await connection
          .query(
            `SELECT set_config(name, '${CLIENT_CHECK_INTERVAL_MS}', false) FROM pg_settings WHERE name = 'client_connection_check_interval'`,
          )
          .catch((error: unknown) => {
            if (!(error instanceof pg.DatabaseError)) throw error;
          })
          .finally(() => clearTimeout(bound));
        return connection;
      } catch (error) {
        const wrong = misconfiguration(error, settings);
        throw new DatabaseUnavailableError('connect', wrong ?? 'no connection to the database', {
          cause: error,
          misconfigured: wrong !== undefined,
        });
      }
    }

    _query(connection: PgConnection, obj: unknown): Promise<unknown> {
      const query = pgQuery.call(this, connection, obj);
      const lost = (error: unknown): Error => {
        const stream = connection.connection?.stream;
        const dead =
          connection.__knex__disposed ||
          connection._ended ||
          connection._queryable === false ||
          stream?.destroyed;
        if (!dead) {
          return error instanceof Error ? error : new Error(String(error));
        }
        return new DatabaseUnavailableError('query', 'connection to the database lost', { cause: error });
      };
      if (!queryTimeoutMs) return query.catch((error: unknown) => Promise.reject(lost(error)));
      const ms = queryTimeoutMs;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          connection.__knex__disposed = 'query deadline passed';
          const stream = connection.connection?.stream;
          // A reset also drops what the kernel has not sent yet.
          if (stream?.resetAndDestroy) stream.resetAndDestroy();
          else stream?.destroy();
          reject(new DatabaseUnavailableError('query', `no answer from the database within ${ms} ms`));
        }, ms);
        query.then(
          (result) => {
            clearTimeout(timer);
            resolve(result);
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(lost(error));
          },
        );
      });
    }
  };
}

/** A WAL position (`16/B374D848`) as a number that compares. */
function lsn(text: string): bigint {
  const [high = '0', low = '0'] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

const QUERY_CANCELED = '57014';

/** How long a replica that failed is left alone before it is tried again. */
const REPLICA_REST_MS = 2000;
const REPLAY_POLL_MS = 10;

interface Replica {
  knex: Knex;
  monitor: DependencyMonitor;
  /** The furthest replay position seen: a target at or below it needs no question to the replica. */
  replayed: bigint;
  restUntil: number;
}

/**
 * Read routing over streaming replicas. The target of a read is the primary's WAL insert position
 * when it starts (one cheap query, no table touched; the insert position, not the write position:
 * with synchronous_commit off a commit is acknowledged before its WAL is written): a replica that has replayed that far holds every
 * commit that preceded the read, the caller's own and everyone else's, so what it answers (and what
 * the cache keeps of it) is never behind what the primary would have answered at that moment.
 */
class ReplicaReads {
  private next = 0;
  readonly counts = { primary: 0, replica: 0 };

  constructor(
    private readonly primary: Knex,
    private readonly replicas: Replica[],
    private readonly waitMs: number,
    private readonly logger: Logger,
  ) {}

  async read<T>(query: (knex: Knex) => Promise<T>): Promise<T> {
    const replica = this.pick();
    if (replica) {
      const { rows } = await this.primary.raw<{ rows: { lsn: string }[] }>(
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      );
      try {
        if (await this.caughtUp(replica, lsn(rows[0]!.lsn))) {
          const result = await query(replica.knex);
          replica.monitor.up();
          this.counts.replica++;
          return result;
        }
      } catch (error) {
        // A statement past its statement_timeout would be as slow on the primary: the caller's answer.
        if ((error as { code?: unknown }).code === QUERY_CANCELED) throw error;
        // Whatever else the replica's failure (gone, too slow, a query cancelled by a recovery conflict),
        // the primary answers instead; a connection failure rests the replica for a while.
        if (isConnectionError(error)) {
          replica.restUntil = Date.now() + REPLICA_REST_MS;
          replica.monitor.down(error);
        } else {
          this.logger.warn({ err: error }, 'replica read failed: read from the primary');
        }
      }
    }
    const result = await query(this.primary);
    this.counts.primary++;
    return result;
  }

  /** The next replica in turn that is not resting. */
  private pick(): Replica | undefined {
    const now = Date.now();
    for (let i = 0; i < this.replicas.length; i++) {
      const replica = this.replicas[(this.next + i) % this.replicas.length]!;
      if (replica.restUntil <= now) {
        this.next = (this.next + i + 1) % this.replicas.length;
        return replica;
      }
    }
    return undefined;
  }

  /** True once the replica has replayed `target`; false when it is still behind after the wait. */
  private async caughtUp(replica: Replica, target: bigint): Promise<boolean> {
    const deadline = Date.now() + this.waitMs;
    while (replica.replayed < target) {
      const { rows } = await replica.knex.raw<{ rows: { lsn: string | null }[] }>(
        'SELECT pg_last_wal_replay_lsn()::text AS lsn',
      );
      const replayed = rows[0]?.lsn;
      // Not in recovery: a server that takes writes itself is never behind.
      if (replayed == null) return true;
      replica.replayed = lsn(replayed) > replica.replayed ? lsn(replayed) : replica.replayed;
      if (replica.replayed >= target) return true;
      if (Date.now() + REPLAY_POLL_MS > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS));
    }
    return true;
  }
}

/** Per API database: how long an INSERT may still start committing after it was sent. */
const insertWindows = new WeakMap<Knex, number>();

/** Time left for the commit and the answer to reach a client still waiting for it. */
const DEADLINE_MARGIN_MS = 150;

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
  statementTimeoutMs: number,
): Promise<Knex.PgConnectionConfig> {
  const common = {
    connectionTimeoutMillis: config.db.connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
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
    knex = knexPkg.knex({
      // A client-side bound too: a database that stops answering (a frozen network, no reset) must
      // not hold a request; it counts as an outage.
      client: pgClient(settings, queryTimeoutMs),
      connection: settings,
      pool: { min: 0, max: options.poolMax ?? config.db.poolMax },
      acquireConnectionTimeout: config.db.connectTimeoutMs + 100,
      ...quiet(logger),
    });
    insertWindows.set(knex, Math.max(queryTimeoutMs - DEADLINE_MARGIN_MS, 0));
    for (const [index, url] of config.replicas.urls.entries()) {
      const replicaSettings = { ...settings, connectionString: url, host: undefined, port: undefined };
      const name = `${options.name ?? 'database'} replica ${index + 1}`;
      replicas.push({
        knex: knexPkg.knex({
          client: pgClient(replicaSettings, queryTimeoutMs),
          connection: replicaSettings,
          pool: { min: 0, max: options.poolMax ?? config.db.poolMax },
          acquireConnectionTimeout: config.db.connectTimeoutMs + 100,
          ...quiet(logger),
        }),
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
