import type http from 'node:http';
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config, ModuleName } from '../config.js';
import type { RequestRules } from '../http/validate.js';
import type { Database } from '../infra/db.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics, Reachability } from '../infra/metrics.js';

/** Who is calling: a user, or nobody in particular when authentication is off. */
export interface Caller {
  userId: string | null;
}

declare module 'koa' {
  interface DefaultState {
    caller?: Caller;
    requestId?: string;
    /** The session's user, looked up once per request however many middleware ask (auth module). */
    sessionUser?: Promise<string>;
  }
}

/** What every module factory is given; anything else it needs from another module is an argument. */
export interface ModuleContext {
  config: Config;
  logger: Logger;
  db: Database;
  /** Request bodies and query parameters checked against swagger.yml. */
  rules: RequestRules;
  metrics: Metrics;
}

export interface AppModule {
  name: ModuleName;
  /** Mounted before every route, in module order (config.ts ALL_MODULES). */
  middleware?: Middleware[];
  routes?(router: Router): void;
  /** Takes over requests the HTTP server does not hand to Koa (WebSocket upgrades). */
  attach?(server: http.Server): void;
  /** Shutdown begins: long-lived streams are told to reconnect and closed, before the server closes. */
  stop?(): void;
  /** The backends the module talks to, for /metrics. */
  dependencies?: Reachability[];
  close?(): Promise<void>;
}
