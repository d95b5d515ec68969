import type { Middleware } from 'koa';
import type { ChatsService } from '../chats/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { MessagesRepository } from './repository.js';
import { messagesRoutes } from './routes.js';
import { MessagesService, type HistoryCache } from './service.js';

export type { HistoryCache } from './service.js';

/**
 * Sending messages and reading a chat's history page by page. `history` remembers pages (cache
 * module); `sendLimit` meters sends (throttling module).
 */
export function messagesModule(
  { config, db, rules }: ModuleContext,
  deps: { chats: ChatsService; authenticate: Middleware; history?: HistoryCache; sendLimit?: Middleware },
): AppModule {
  const service = new MessagesService(new MessagesRepository(db.knex, db.read), deps.chats, deps.history);
  return {
    name: 'messages',
    routes: (router) =>
      messagesRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: deps.authenticate,
        sendLimit: deps.sendLimit,
      }),
  };
}
