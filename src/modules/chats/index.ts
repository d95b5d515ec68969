import type { Middleware } from 'koa';
import type { Knex } from '../../infra/db.js';
import type { HistoryCache } from '../messages/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { ChatsRepository } from './repository.js';
import { chatsRoutes } from './routes.js';
import { ChatsService, type MembershipCache } from './service.js';

export type { ChatsService };
export type { MembershipCache } from './service.js';

/**
 * The membership rule, for the modules that show a chat's content (messages, search). With the
 * cache module, memberships are remembered and a join makes the chat's cached history stale
 * (display names show in it).
 */
export function createChatsService(
  knex: Knex,
  caches: { memberships?: MembershipCache; history?: HistoryCache } = {},
): ChatsService {
  const { history } = caches;
  return new ChatsService(new ChatsRepository(knex), {
    memberships: caches.memberships,
    joined: history && ((chatId) => history.invalidate(chatId)),
  });
}

/** Chats and their members. */
export function chatsModule(
  { config, rules }: ModuleContext,
  deps: { chats: ChatsService; authenticate: Middleware },
): AppModule {
  return {
    name: 'chats',
    routes: (router) =>
      chatsRoutes(router, deps.chats, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: deps.authenticate,
      }),
  };
}
