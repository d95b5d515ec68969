import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import type { Config, ModuleName } from './config.js';
import { anonymous } from './http/caller.js';
import { serviceUnavailable } from './errors.js';
import { errorHandler, requestLog } from './http/middleware.js';
import { createHttpServer, listen } from './http/server.js';
import { createDatabase, type Database } from './infra/db.js';
import type { Logger } from './infra/logger.js';
import { closeQuietly } from './infra/shutdown.js';
import { authModule } from './modules/auth/index.js';
import { cacheModule } from './modules/cache/index.js';
import { chatsModule } from './modules/chats/index.js';
import { docsModule } from './modules/docs/index.js';
import { healthModule } from './modules/health/index.js';
import { messagesModule } from './modules/messages/index.js';
import { searchModule } from './modules/search/index.js';
import { throttlingModule } from './modules/throttling/index.js';
import type { AppModule, Extensions, ModuleContext, ModuleFactory } from './modules/types.js';

const factories: Partial<Record<ModuleName, ModuleFactory>> = {
  health: healthModule,
  throttling: throttlingModule,
  cache: cacheModule,
  auth: authModule,
  chats: chatsModule,
  messages: messagesModule,
  search: searchModule,
  docs: docsModule,
};

const RETRY_MAX_MS = 10_000;

export interface Service {
  app: Koa;
  db: Database;
  modules: AppModule[];
  /** Settles when the schema is up to date (retried in the background while the database is down). */
  migrated: Promise<void>;
  listen(): Promise<http.Server>;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes every connection. */
  close(): Promise<void>;
}

function migrateInBackground(
  db: Database,
  logger: Logger,
  state: { ready: boolean; closed: boolean },
): Promise<void> {
  return (async () => {
    for (let attempt = 1, delay = 500; !state.closed; attempt++, delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        const applied = await db.migrate();
        logger.info({ applied }, applied.length ? 'database migrated' : 'database schema up to date');
        state.ready = true;
        return;
      } catch (error) {
        logger.error({ err: error, attempt, retryInMs: delay }, 'database migration failed, retrying');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  })();
}

export async function createService(config: Config, logger: Logger): Promise<Service> {
  const db = await createDatabase(config, logger);
  const state = { ready: !config.migrateOnStart, closed: false };
  const migrated = config.migrateOnStart ? migrateInBackground(db, logger, state) : Promise.resolve();

  // Every caller is anonymous unless the auth module (built before the modules that read this) says.
  const extensions: Extensions = { authenticate: anonymous };
  const context: ModuleContext = { config, logger, db, extensions };
  const modules: AppModule[] = [];
  for (const name of config.apps) {
    const factory = factories[name];
    if (factory) modules.push(await factory(context));
  }

  // Behind proxies the client address is the entry TRUST_PROXY_HOPS from the right of X-Forwarded-For:
  // entries further left were written by the client and prove nothing.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustProxyHops });
  app.use(requestLog(logger));
  app.use(errorHandler(logger, (error) => db.isUnavailable(error)));
  // Until the schema is in place the API answers 503, not errors about missing tables.
  app.use(async (ctx, next) => {
    if (!state.ready && ctx.path.startsWith('/v1/')) throw serviceUnavailable();
    await next();
  });
  for (const module of modules) for (const middleware of module.middleware ?? []) app.use(middleware);
  const router = new Router();
  for (const module of modules) module.routes?.(router);
  app.use(router.routes());
  app.use(router.allowedMethods());

  let server: http.Server | undefined;
  return {
    app,
    db,
    modules,
    migrated,
    async listen() {
      server = await listen(createHttpServer(app, config, logger), config);
      return server;
    },
    async close() {
      state.closed = true;
      if (server) {
        const open = server;
        const closed = new Promise<void>((resolve) => open.close(() => resolve()));
        // Keep-alive connections whose request finishes after close() become idle later: close them then.
        open.closeIdleConnections();
        const sweep = setInterval(() => open.closeIdleConnections(), 50);
        const deadline = setTimeout(() => open.closeAllConnections(), config.shutdownTimeoutMs);
        await closed;
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      // Connections to backends are closed one by one; one that fails to close is logged, not fatal.
      for (const module of [...modules].reverse()) {
        await closeQuietly(logger, `module ${module.name}`, () => module.close?.());
      }
      await closeQuietly(logger, 'database', () => db.close());
    },
  };
}
