import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { ALL_MODULES, type Config, type ModuleName } from './config.js';
import { authFailed, serviceUnavailable } from './errors.js';
import { errorHandler, inFlightRequests, requestLog } from './http/middleware.js';
import { createRequestRules } from './http/validate.js';
import { createHttpServer, listen } from './http/server.js';
import { createDatabase, type Database } from './infra/db.js';
import type { Logger } from './infra/logger.js';
import { createMetrics } from './infra/metrics.js';
import { projectRoot } from './infra/paths.js';
import { closeQuietly } from './infra/shutdown.js';
import { authModule, createAuth, noAuthentication } from './modules/auth/index.js';
import { cacheModule } from './modules/cache/index.js';
import { chatsModule, createChatsService } from './modules/chats/index.js';
import { docsModule } from './modules/docs/index.js';
import { eventsModule } from './modules/events/index.js';
import { healthModule } from './modules/health/index.js';
import { messagesModule } from './modules/messages/index.js';
import { searchModule } from './modules/search/index.js';
import { throttlingModule } from './modules/throttling/index.js';
import type { AppModule, ModuleContext } from './modules/types.js';

const RETRY_MAX_MS = 10_000;

/** Without the auth module there are no sessions: what needs a person is refused. */
const requireSession: Middleware = () => Promise.reject(authFailed());

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
        // An outage or wrong settings are logged once by the database's monitor; retries stay quiet.
        if (db.isUnavailable(error))
          logger.debug({ attempt, retryInMs: delay }, 'database schema check retrying');
        else logger.error({ err: error, attempt, retryInMs: delay }, 'database migration failed, retrying');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  })();
}

/**
 * The modules of APPS, built in the order their dependencies need and given what they use as
 * arguments: the caches before the services that read through them, sessions before the budgets
 * that meter by user, the membership rule before the modules that show a chat's content.
 */
async function buildModules(
  context: ModuleContext,
  { spec, schemaReady }: { spec: string; schemaReady: () => boolean },
): Promise<AppModule[]> {
  const on = (name: ModuleName) => context.config.apps.includes(name);
  const built: AppModule[] = [];
  const add = <M extends AppModule>(module: M): M => {
    built.push(module);
    return module;
  };

  if (on('health')) add(healthModule(context, schemaReady));
  const caches = on('cache') ? add(cacheModule(context)) : undefined;
  const auth = on('auth') ? createAuth(context, caches?.sessions) : undefined;
  const { authenticate, identify } = auth?.authentication ?? noAuthentication;
  const throttling = on('throttling') ? add(throttlingModule(context, identify)) : undefined;
  if (auth) add(authModule(context, auth, throttling?.loginGuard));
  const history = caches?.history;
  const events = on('events')
    ? add(
        eventsModule(context, {
          authenticate,
          fromHeader: auth?.authentication.fromHeader ?? noAuthentication.fromHeader,
          // The WebSocket `read` frame is the read-mark route (the chats service is built next).
          read: async (userId, chatId, messageId) => {
            await chats.markRead({ userId }, chatId, messageId);
          },
        }),
      )
    : undefined;
  const chats = createChatsService(context.db, {
    memberships: caches?.memberships,
    chatLists: caches?.chatLists,
    joined: history && ((chatId) => history.invalidate(chatId)),
    events: events?.publisher,
    online: events && ((userIds) => events.online(userIds)),
  });
  const authenticateUser = auth?.authenticateSession ?? requireSession;
  if (on('chats')) add(chatsModule(context, { chats, authenticate, authenticateUser }));
  if (on('messages')) {
    add(
      messagesModule(context, {
        chats,
        authenticate,
        history,
        sendLimit: throttling?.sendLimit,
        events: events?.publisher,
      }),
    );
  }
  if (on('search')) add(await searchModule(context, { chats, authenticate }));
  if (on('docs')) add(docsModule(spec));
  // Mounted in the fixed order of ALL_MODULES (throttling before any route, and so on).
  return built.sort((a, b) => ALL_MODULES.indexOf(a.name) - ALL_MODULES.indexOf(b.name));
}

export async function createService(config: Config, logger: Logger): Promise<Service> {
  const db = await createDatabase(config, logger);
  const state = { ready: !config.migrateOnStart, closed: false };
  const migrated = config.migrateOnStart ? migrateInBackground(db, logger, state) : Promise.resolve();

  const spec = fs.readFileSync(path.join(projectRoot(), 'swagger.yml'), 'utf8');
  const metrics = createMetrics();
  const context = { config, logger, db, rules: createRequestRules(spec), metrics };
  const modules = await buildModules(context, { spec, schemaReady: () => state.ready });
  metrics.watchDependencies(() => modules.flatMap((module) => module.dependencies ?? []));

  // Behind proxies the client address is the entry TRUST_PROXY_HOPS from the right of X-Forwarded-For:
  // entries further left were written by the client and prove nothing.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustProxyHops });
  const inFlight = inFlightRequests();
  app.use(inFlight.middleware);
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
      const created = createHttpServer(app, config, logger);
      for (const module of modules) module.attach?.(created);
      server = await listen(created, config);
      return server;
    },
    async close() {
      state.closed = true;
      // Open streams would hold the server's close up: they are told to reconnect and closed first.
      for (const module of modules) module.stop?.();
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
      // Requests still being handled (long polls told to answer, in-flight writes) finish on open
      // connections to the backends; after the timeout they are cut off.
      if (!(await inFlight.drained(config.shutdownTimeoutMs))) {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'requests still running at shutdown');
      }
      // Connections to backends are closed one by one; one that fails to close is logged, not fatal.
      for (const module of [...modules].reverse()) {
        await closeQuietly(logger, `module ${module.name}`, () => module.close?.());
      }
      await closeQuietly(logger, 'database', () => db.close());
    },
  };
}
