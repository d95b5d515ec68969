import type { AppModule, Extensions, ModuleContext } from '../types.js';
import { ChatsRepository } from './repository.js';
import { chatsRoutes } from './routes.js';
import type { Knex } from '../../infra/db.js';
import { ChatsService } from './service.js';

export type { ChatsService };
export type { MembershipCache } from './service.js';

/**
 * The membership rule, for modules that show a chat's content (messages, search); with the cache
 * module's extensions, memberships are remembered and joins make cached history stale.
 */
export function createChatsService(knex: Knex, extensions: Partial<Extensions> = {}): ChatsService {
  const history = extensions.historyCache;
  return new ChatsService(new ChatsRepository(knex), {
    memberships: extensions.membershipCache,
    joined: history && ((chatId) => history.invalidate(chatId)),
  });
}

/** Chats and their members. Exports the membership rule the messages and search modules apply. */
export function chatsModule({ config, db, extensions }: ModuleContext): AppModule {
  const service = createChatsService(db.knex, extensions);
  return {
    name: 'chats',
    routes: (router) =>
      chatsRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate: extensions.authenticate,
      }),
  };
}
