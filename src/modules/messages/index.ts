import { createChatsService } from '../chats/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { MessagesRepository } from './repository.js';
import { messagesRoutes } from './routes.js';
import { MessagesService } from './service.js';

export type { HistoryCache, HistoryPage } from './service.js';

/** Sending messages and reading a chat's history page by page. */
export function messagesModule({ config, db, extensions }: ModuleContext): AppModule {
  const service = new MessagesService(
    new MessagesRepository(db.knex),
    createChatsService(db.knex, extensions),
    extensions.historyCache,
  );
  return {
    name: 'messages',
    routes: (router) =>
      messagesRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate: extensions.authenticate,
        sendLimit: extensions.sendLimit,
      }),
  };
}
