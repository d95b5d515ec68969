import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { afterReads } from '../timeout.js';
import { DatabaseUnavailableError, misconfiguration } from './faults.js';

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
export function pgClient(
  settings: Knex.PgConnectionConfig,
  queryTimeoutMs: number | undefined,
): typeof Knex.Client {
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
        // When the process itself was busy past the deadline, the answer may be waiting unread (a
        // statement that committed, answered 503): the verdict comes after the turn's reads.
        const deadline = afterReads(ms, () => {
          connection.__knex__disposed = 'query deadline passed';
          const stream = connection.connection?.stream;
          // A reset also drops what the kernel has not sent yet.
          if (stream?.resetAndDestroy) stream.resetAndDestroy();
          else stream?.destroy();
          reject(new DatabaseUnavailableError('query', `no answer from the database within ${ms} ms`));
        });
        query.then(
          (result) => {
            deadline.cancel();
            resolve(result);
          },
          (error: unknown) => {
            deadline.cancel();
            reject(lost(error));
          },
        );
      });
    }
  };
}

/**
 * What every knex instance shares: its own messages would be plain text on stdout, so they go to the
 * JSON log (the monitor reports outages); and a failed query's error keeps the driver's message
 * instead of the SQL with its values filled in (password and token hashes, message text).
 */
export function quiet(logger: Logger): Pick<Knex.Config, 'log' | 'compileSqlOnError'> {
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
