import type { Middleware } from 'koa';
import type { Database } from '../../infra/db.js';
import type { AppModule, ModuleContext } from '../types.js';
import { ChatsRepository } from './repository.js';
import { chatsRoutes } from './routes.js';
import { ChatsService, type ChatsOptions } from './service.js';

export type { ChatsService };
export type { ChatListCache, LoadedChatList, MembershipCache } from './service.js';

/**
 * The membership rule, for the modules that show a chat's content (messages, search). With the
 * cache module, memberships are remembered (and forgotten on leave, on every instance); `joined`
 * hears of every join (display names show in cached history, which goes stale then).
 */
export function createChatsService(
  db: Pick<Database, 'knex' | 'read'>,
  options: ChatsOptions = {},
): ChatsService {
  return new ChatsService(new ChatsRepository(db.knex, db.read), options);
}

/**
 * Chats and their members, the caller's chat list and read marks. `authenticateUser` requires a
 * session even with authentication off (a chat list and read marks belong to a person).
 */
export function chatsModule(
  { config, rules }: ModuleContext,
  deps: { chats: ChatsService; authenticate: Middleware; authenticateUser: Middleware },
): AppModule {
  return {
    name: 'chats',
    routes: (router) =>
      chatsRoutes(router, deps.chats, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: deps.authenticate,
        authenticateUser: deps.authenticateUser,
      }),
  };
}
