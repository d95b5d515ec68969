import os from 'node:os';
import path from 'node:path';
import { projectRoot } from './infra/paths.js';
import { clusterTarget } from './infra/redis-url.js';

export const ALL_MODULES = [
  'health',
  'throttling',
  'cache',
  'auth',
  'chats',
  'messages',
  'events',
  'search',
  'docs',
] as const;
export type ModuleName = (typeof ALL_MODULES)[number];

export type DatabaseConfig =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'url'; url: string }
  | { kind: 'hosts'; hosts: string[]; port: number; database: string; user: string; password?: string };

export interface Config {
  port: number;
  host: string;
  logLevel: string;
  /** `auto`: human-readable when stdout is a terminal, JSON lines otherwise. */
  logFormat: LogFormat;
  apps: ModuleName[];
  authDisabled: boolean;
  trustProxy: boolean;
  /** With trustProxy: how many X-Forwarded-For entries, from the right, were written by our proxies. */
  trustProxyHops: number;
  http: { requestTimeoutMs: number; headersTimeoutMs: number; maxConnectionsPerIp: number };
  sessionTtlSeconds: number;
  bcryptCost: number;
  /** Password hashes at once, hashes waiting beyond them, and hashes one client may hold (both). */
  hashing: { concurrency: number; queueMax: number; perClientMax: number };
  maxBodyBytes: number;
  shutdownTimeoutMs: number;
  migrateOnStart: boolean;
  database: DatabaseConfig;
  /** Streaming replicas for reads that may lag (history pages, chat lists, search jobs). */
  replicas: { urls: string[]; waitMs: number };
  db: { poolMax: number; connectTimeoutMs: number; queryTimeoutMs: number; statementTimeoutMs: number };
  redisUrl?: string;
  amqpUrl?: string;
  /**
   * Fresh for `ttlSeconds`; kept `staleSeconds` longer for use while the database is down. With
   * Redis, up to `localEntries` sessions and as many memberships are also kept in the process for
   * `localTtlMs` (0 entries: not at all).
   */
  cache: { ttlSeconds: number; staleSeconds: number; localEntries: number; localTtlMs: number };
  rateLimit: {
    max: number;
    windowMs: number;
    sendMax: number;
    sendWindowMs: number;
    /** Entries the in-memory general counter keeps (the login counters have their own space). */
    memoryKeys: number;
    /** Login attempts per client address. */
    loginMax: number;
    loginWindowMs: number;
    /** Failed logins per user name and client address; over it that client gets 429 for that name. */
    loginFailMax: number;
    loginFailWindowMs: number;
    /** Failed logins per user name from all clients; over it every attempt on the name is delayed. */
    loginFailNameMax: number;
    loginFailDelayMs: number;
  };
  events: {
    /** A comment line on idle streams (and a WebSocket ping) this often. */
    heartbeatMs: number;
    /** Bytes a stream may have waiting for its client; beyond, the client is too slow: closed. */
    maxBufferedBytes: number;
    streamsPerUser: number;
    ticketTtlSeconds: number;
    /** How far back a resume id is replayed; older ones start with `reset`. */
    replayWindowSeconds: number;
    /** The reconnect delay SSE clients are told (`retry:`). */
    retryMs: number;
    presenceTtlSeconds: number;
    presenceDebounceMs: number;
    /** Presence events go to chats of at most this many members (each change reaches every member). */
    presenceMaxMembers: number;
    /** Under a steady flow, SSE frames are written to each stream at most this often (ms), gathered. */
    writeWindowMs: number;
    /** The window grows so that the streams with something to write take at most this many socket writes a second (0: fixed). */
    writesPerSecond: number;
  };
  search: {
    resultTtlSeconds: number;
    maxResults: number;
    timeoutMs: number;
    prefetch: number;
    maxAttempts: number;
    queue: string;
    /** Unfinished tasks (WAITING, IN_PROCESS) one user may have at once. */
    maxLiveTasks: number;
    /** Tasks one user may hold at once: unfinished, or finished with results kept for resultTtlSeconds. */
    maxStoredTasks: number;
    /** Words in one query. */
    maxTerms: number;
    /** Bytes the in-process result store (no REDIS_URL) may hold, results and reservations. */
    storeMaxBytes: number;
    /** quorum: replicated, with a delivery limit; classic: what existing deployments declared. */
    queueType: QueueType;
    /** Deliveries of one job (quorum queues) before it is dead-lettered: a job that kills its consumer. */
    deliveryLimit: number;
  };
}

export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A bad setting: the process prints this one line and stops. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function present(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = present(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = present(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = present(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return raw;
}

/** A redis:// or rediss:// URL, or a cluster's node list (redis+cluster://host:port,host:port). */
function redisUrl(env: Env): string | undefined {
  const raw = present(env, 'REDIS_URL');
  if (raw === undefined) return undefined;
  let cluster;
  try {
    cluster = clusterTarget(raw);
  } catch (error) {
    throw new ConfigError(`REDIS_URL ${(error as Error).message}`);
  }
  return cluster ? raw : url(env, 'REDIS_URL', ['redis:', 'rediss:']);
}

function replicaUrls(env: Env): string[] {
  const raw = present(env, 'DATABASE_REPLICA_URLS');
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) =>
      url({ DATABASE_REPLICA_URLS: item }, 'DATABASE_REPLICA_URLS', ['postgres:', 'postgresql:'])!,
    );
}

function modules(env: Env): ModuleName[] {
  const raw = present(env, 'APPS');
  if (raw === undefined || raw === 'all') return [...ALL_MODULES];
  const names = raw
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(ALL_MODULES as readonly string[]).includes(name)) {
      throw new ConfigError(`APPS names an unknown module "${name}" (known: ${ALL_MODULES.join(', ')})`);
    }
  }
  // Mount order is fixed (throttling before routes, and so on), whatever order APPS lists.
  return ALL_MODULES.filter((name) => names.includes(name));
}

function database(env: Env): DatabaseConfig {
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  if (databaseUrl) return { kind: 'url', url: databaseUrl };
  const hosts = present(env, 'POSTGRES_HOSTS') ?? present(env, 'POSTGRES_HOST');
  if (hosts) {
    return {
      kind: 'hosts',
      hosts: hosts
        .split(',')
        .map((host) => host.trim())
        .filter(Boolean),
      port: integer(env, 'POSTGRES_PORT', 5432, 1, 65535),
      database: present(env, 'POSTGRES_DB') ?? 'postgres',
      user: present(env, 'POSTGRES_USER') ?? 'postgres',
      password: env.POSTGRES_PWD ?? env.POSTGRES_PASSWORD,
    };
  }
  const dataDir = present(env, 'DATA_DIR') ?? path.join(projectRoot(), 'data');
  return { kind: 'embedded', dataDir };
}

export function loadConfig(env: Env = process.env): Config {
  const logLevel = present(env, 'LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  const config: Config = {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: present(env, 'HOST') ?? '0.0.0.0',
    logLevel,
    logFormat: oneOf(env, 'LOG_FORMAT', LOG_FORMATS, 'auto'),
    apps: modules(env),
    authDisabled: boolean(env, 'AUTH_DISABLED', false),
    trustProxy: boolean(env, 'TRUST_PROXY', false),
    trustProxyHops: integer(env, 'TRUST_PROXY_HOPS', 1, 1, 32),
    http: {
      requestTimeoutMs: integer(env, 'HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
      headersTimeoutMs: integer(env, 'HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 3_600_000),
      maxConnectionsPerIp: integer(env, 'HTTP_MAX_CONNECTIONS_PER_IP', 256, 0, 1_000_000),
    },
    sessionTtlSeconds: integer(env, 'SESSION_TTL', 86_400, 1, 31_536_000),
    bcryptCost: integer(env, 'BCRYPT_COST', 12, 4, 15),
    hashing: {
      concurrency: integer(env, 'BCRYPT_CONCURRENCY', os.availableParallelism(), 1, 1024),
      queueMax: integer(env, 'BCRYPT_QUEUE_MAX', 4, 0, 100_000),
      perClientMax: integer(env, 'BCRYPT_PER_CLIENT_MAX', 2, 1, 100_000),
    },
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 1_048_576, 1024, 104_857_600),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    migrateOnStart: boolean(env, 'MIGRATE_ON_START', true),
    database: database(env),
    replicas: {
      urls: replicaUrls(env),
      waitMs: integer(env, 'DATABASE_REPLICA_WAIT_MS', 100, 0, 10_000),
    },
    db: {
      poolMax: integer(env, 'DB_POOL_MAX', 10, 1, 1000),
      connectTimeoutMs: integer(env, 'DB_CONNECT_TIMEOUT_MS', 800, 50, 60_000),
      queryTimeoutMs: integer(env, 'DB_QUERY_TIMEOUT_MS', 900, 50, 3_600_000),
      statementTimeoutMs: integer(env, 'DB_STATEMENT_TIMEOUT_MS', 10_000, 100, 3_600_000),
    },
    redisUrl: redisUrl(env),
    amqpUrl: url(env, 'AMQP_URL', ['amqp:', 'amqps:']),
    cache: {
      ttlSeconds: integer(env, 'CACHE_TTL', 60, 1, 86_400),
      staleSeconds: integer(env, 'CACHE_STALE_TTL', 600, 0, 604_800),
      localEntries: integer(env, 'CACHE_LOCAL_ENTRIES', 10_000, 0, 10_000_000),
      localTtlMs: integer(env, 'CACHE_LOCAL_TTL_MS', 3000, 100, 60_000),
    },
    rateLimit: {
      max: integer(env, 'RATE_LIMIT_MAX', 600, 1, 10_000_000),
      windowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
      sendMax: integer(env, 'SEND_RATE_LIMIT_MAX', 60, 1, 10_000_000),
      sendWindowMs: integer(env, 'SEND_RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
      memoryKeys: integer(env, 'RATE_LIMIT_MEMORY_KEYS', 100_000, 10, 100_000_000),
      loginMax: integer(env, 'LOGIN_RATE_LIMIT_MAX', 20, 1, 10_000_000),
      loginWindowMs: integer(env, 'LOGIN_RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
      loginFailMax: integer(env, 'LOGIN_FAIL_LIMIT_MAX', 10, 1, 10_000_000),
      loginFailWindowMs: integer(env, 'LOGIN_FAIL_LIMIT_WINDOW_MS', 900_000, 1000, 86_400_000),
      loginFailNameMax: integer(env, 'LOGIN_FAIL_NAME_MAX', 100, 1, 10_000_000),
      loginFailDelayMs: integer(env, 'LOGIN_FAIL_DELAY_MS', 1000, 0, 60_000),
    },
    events: {
      heartbeatMs: integer(env, 'EVENTS_HEARTBEAT_MS', 20_000, 50, 25_000),
      maxBufferedBytes: integer(env, 'EVENTS_MAX_BUFFERED_BYTES', 1_048_576, 1024, 1_073_741_824),
      streamsPerUser: integer(env, 'STREAMS_PER_USER', 10, 1, 10_000),
      ticketTtlSeconds: integer(env, 'EVENTS_TICKET_TTL', 30, 1, 3600),
      replayWindowSeconds: integer(env, 'EVENTS_REPLAY_WINDOW', 259_200, 86_400, 31_536_000),
      retryMs: integer(env, 'EVENTS_RETRY_MS', 2000, 0, 600_000),
      presenceTtlSeconds: integer(env, 'PRESENCE_TTL', 60, 3, 3600),
      presenceDebounceMs: integer(env, 'PRESENCE_DEBOUNCE_MS', 3000, 0, 600_000),
      presenceMaxMembers: integer(env, 'PRESENCE_MAX_MEMBERS', 100, 0, 100_000),
      writeWindowMs: integer(env, 'EVENTS_WRITE_WINDOW_MS', 20, 0, 1000),
      writesPerSecond: integer(env, 'EVENTS_WRITES_PER_SECOND', 10_000, 0, 10_000_000),
    },
    search: {
      resultTtlSeconds: integer(env, 'SEARCH_RESULT_TTL', 300, 1, 604_800),
      maxResults: integer(env, 'SEARCH_MAX_RESULTS', 1000, 1, 100_000),
      timeoutMs: integer(env, 'SEARCH_TIMEOUT_MS', 5000, 10, 600_000),
      prefetch: integer(env, 'SEARCH_PREFETCH', 4, 1, 1000),
      maxAttempts: integer(env, 'SEARCH_MAX_ATTEMPTS', 3, 1, 100),
      queue: present(env, 'SEARCH_QUEUE') ?? 'messenger.search',
      maxLiveTasks: integer(env, 'SEARCH_MAX_LIVE_TASKS', 4, 1, 1000),
      maxStoredTasks: integer(env, 'SEARCH_MAX_STORED_TASKS', 30, 1, 100_000),
      maxTerms: integer(env, 'SEARCH_MAX_TERMS', 16, 1, 1000),
      storeMaxBytes: integer(env, 'SEARCH_STORE_MAX_BYTES', 67_108_864, 65_536, 17_179_869_184),
      queueType: oneOf(env, 'SEARCH_QUEUE_TYPE', QUEUE_TYPES, 'classic'),
      deliveryLimit: integer(env, 'SEARCH_DELIVERY_LIMIT', 20, 1, 1_000_000),
    },
  };
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    throw new ConfigError('HTTP_HEADERS_TIMEOUT_MS must not be above HTTP_REQUEST_TIMEOUT_MS');
  }
  if (config.replicas.urls.length && config.database.kind === 'embedded') {
    throw new ConfigError(
      'DATABASE_REPLICA_URLS is set but no primary is: set DATABASE_URL or POSTGRES_HOSTS too',
    );
  }
  if (config.amqpUrl && !config.redisUrl) {
    throw new ConfigError(
      'AMQP_URL is set but REDIS_URL is not: search consumers store results in Redis, so both are needed',
    );
  }
  if (config.amqpUrl && config.database.kind === 'embedded') {
    throw new ConfigError(
      'AMQP_URL is set but no shared database is: consumers need DATABASE_URL or POSTGRES_HOSTS too',
    );
  }
  return config;
}
