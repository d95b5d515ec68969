import type { Middleware } from 'koa';
import type { ChatsService } from '../chats/index.js';
import type { EventPublisher } from '../events/model.js';
import type { AppModule, ModuleContext } from '../types.js';
import { MessagesRepository } from './repository.js';
import { messagesRoutes } from './routes.js';
import { MessagesService, type HistoryCache } from './service.js';

export type { HistoryCache, HistorySource, LoadedPage } from './service.js';
export { NEWEST_PAGE } from './service.js';

/** Idempotency keys older than 24 h are removed this often (never on the send path). */
const EXPIRE_KEYS_EVERY_MS = 10 * 60_000;

export interface MessagesModule extends AppModule {
  /** Removes idempotency keys past their 24 h (also run on a timer); returns how many. */
  expireIdempotencyKeys(): Promise<number>;
}

/**
 * Sending messages and reading a chat's history page by page. `history` remembers pages (cache
 * module); `sendLimit` meters sends (throttling module).
 */
export function messagesModule(
  { config, db, rules, logger }: ModuleContext,
  deps: {
    chats: ChatsService;
    authenticate: Middleware;
    history?: HistoryCache;
    sendLimit?: Middleware;
    events?: EventPublisher;
  },
): MessagesModule {
  const repository = new MessagesRepository(db.knex, db.read);
  const service = new MessagesService(repository, deps.chats, deps.history, deps.events);
  const expire = () => repository.expireIdempotencyKeys();
  const timer = setInterval(() => {
    expire().catch((error: unknown) => logger.warn({ err: error }, 'expiring idempotency keys failed'));
  }, EXPIRE_KEYS_EVERY_MS);
  timer.unref();
  return {
    name: 'messages',
    routes: (router) =>
      messagesRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: deps.authenticate,
        sendLimit: deps.sendLimit,
      }),
    expireIdempotencyKeys: expire,
    close: () => {
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}
