import type { Knex } from 'knex';

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

/** A statement cancelled by its statement_timeout (or a recovery conflict on a replica). */
export const QUERY_CANCELED = '57014';

export function isConnectionError(error: unknown): boolean {
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
export function misconfiguration(error: unknown, settings: Knex.PgConnectionConfig): string | undefined {
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
