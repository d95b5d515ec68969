import net from 'node:net';
import type { Knex } from 'knex';
import type { Config, DatabaseConfig } from '../../config.js';

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

/** The pg connection settings of DATABASE_URL or POSTGRES_*, with the bounds every connection gets. */
export async function connectionSettings(
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
