import { anonymous } from '../../http/caller.js';
import type { AppModule, ModuleContext } from '../types.js';
import { ChatsRepository } from './repository.js';
import { chatsRoutes } from './routes.js';
import { ChatsService } from './service.js';

import type { Knex } from '../../infra/db.js';

export type { ChatsService };

/** The membership rule, for modules that show a chat's content (messages, search). */
export function createChatsService(knex: Knex): ChatsService {
  return new ChatsService(new ChatsRepository(knex));
}

/** Chats and their members. Exports the membership rule the messages and search modules apply. */
export function chatsModule({ config, db, extensions }: ModuleContext): AppModule {
  const service = createChatsService(db.knex);
  return {
    name: 'chats',
    routes: (router) =>
      chatsRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate: extensions.authenticate ?? anonymous,
      }),
  };
}
