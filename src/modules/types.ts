import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Config, ModuleName } from '../config.js';
import type { Database } from '../infra/db.js';
import type { Logger } from '../infra/logger.js';
import type { LoginGuard, SessionCache } from './auth/index.js';
import type { MembershipCache } from './chats/index.js';
import type { HistoryCache } from './messages/index.js';

/** Who is calling: a user, or nobody in particular when authentication is off. */
export interface Caller {
  userId: string | null;
}

declare module 'koa' {
  interface DefaultState {
    caller?: Caller;
    requestId?: string;
    /** The session's user, looked up once per request however many modules ask (auth module). */
    sessionUser?: Promise<string>;
  }
}

/**
 * What modules offer each other. A module fills in what it provides when it is built; a module that
 * uses something falls back to a plain default when the provider is not in APPS.
 */
export interface Extensions {
  /** Puts the caller on ctx.state (auth module); without it every caller is anonymous. */
  authenticate: Middleware;
  /**
   * The user of the request's session, or null without a valid one; never throws (auth module).
   * For middleware that runs before any route authenticates.
   */
  identify?: (ctx: Context) => Promise<string | null>;
  /** Remembers sessions between requests (cache module). */
  sessionCache?: SessionCache;
  /** Remembers who may see which chat (cache module). */
  membershipCache?: MembershipCache;
  /** Remembers history pages; a new message makes a chat's pages stale (cache module). */
  historyCache?: HistoryCache;
  /** Counts failed logins per user name (throttling module). */
  loginGuard?: LoginGuard;
  /** The stricter budget for sending messages, mounted on that route (throttling module). */
  sendLimit?: Middleware;
  /** False until the schema is in place (until then /v1 answers 503). */
  schemaReady?: () => boolean;
}

export interface ModuleContext {
  config: Config;
  logger: Logger;
  db: Database;
  extensions: Extensions;
}

export interface AppModule {
  name: ModuleName;
  /** Mounted before every route, in module order. */
  middleware?: Middleware[];
  routes?(router: Router): void;
  close?(): Promise<void>;
}

export type ModuleFactory = (context: ModuleContext) => AppModule | Promise<AppModule>;
