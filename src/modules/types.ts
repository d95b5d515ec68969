import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config, ModuleName } from '../config.js';
import type { Database } from '../infra/db.js';
import type { Logger } from '../infra/logger.js';
import type { LoginGuard, SessionCache } from './auth/index.js';

/** Who is calling: a user, or nobody in particular when authentication is off. */
export interface Caller {
  userId: string | null;
}

declare module 'koa' {
  interface DefaultState {
    caller?: Caller;
    requestId?: string;
  }
}

/**
 * What modules offer each other. A module fills in what it provides when it is built; a module that
 * uses something falls back to a plain default when the provider is not in APPS.
 */
export interface Extensions {
  /** Puts the caller on ctx.state (auth module); without it every caller is anonymous. */
  authenticate?: Middleware;
  /** Remembers sessions between requests (cache module). */
  sessionCache?: SessionCache;
  /** Counts failed logins per user name (throttling module). */
  loginGuard?: LoginGuard;
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
