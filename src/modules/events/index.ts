import type http from 'node:http';
import type { Middleware } from 'koa';
import { createBus } from '../../infra/bus.js';
import type { AppModule, ModuleContext } from '../types.js';
import { WriteBatcher } from './batcher.js';
import { EventHub } from './hub.js';
import type { BusMessage, EventPublisher } from './model.js';
import { createPresenceStore } from './presence.js';
import { EventsRepository } from './repository.js';
import { eventsRoutes } from './routes.js';
import { createTicketStore } from './tickets.js';
import { webSocketUpgrade } from './ws.js';

export type { EventPublisher, StoredEvent } from './model.js';
export { appendEvent } from './append.js';

export interface EventsModule extends AppModule {
  /** The chats and messages services call it after a change commits. */
  publisher: EventPublisher;
  /** The ones of `userIds` with an open stream on any instance (the members list's `online`). */
  online(userIds: string[]): Promise<Set<string>>;
}

/** Stored events are kept this much longer than the replay window promises. */
const RETENTION_MARGIN_SECONDS = 3600;
const PRUNE_EVERY_MS = 10 * 60_000;
/**
 * How long a chat's event that skips ahead waits for the missing ones (another instance's send still
 * on its way through Redis) before they are read from the database, once for all the chat's streams.
 */
const GAP_WAIT_MS = 100;

/**
 * Real-time events: SSE and long poll on `GET /v1/events`, WebSocket on `GET /v1/ws`, tickets,
 * typing. Committed changes reach every instance's streams through the event bus (Redis pub/sub with
 * REDIS_URL, sharded per chat on a Redis Cluster, else in-process); each instance hands every chat's
 * events to its streams in order, reading from the stored events once per chat whatever the bus
 * dropped or delayed.
 */
export function eventsModule(
  { config, db, logger, metrics, rules }: ModuleContext,
  deps: {
    authenticate: Middleware;
    fromHeader: (authorization: string) => Promise<string | null>;
    /** The WebSocket `read` frame does what the read-mark route does (once chats keep read marks). */
    read?: (userId: string | null, chatId: string, messageId: string) => Promise<void>;
  },
): EventsModule {
  const settings = config.events;
  const repository = new EventsRepository(db.knex);
  // A channel per chat (sharded pub/sub) on a Redis Cluster; anonymous streams (no authentication)
  // get every chat's events, so every instance then hears everything on one channel.
  const anonymous = config.authDisabled || !config.apps.includes('auth');
  const bus = createBus<BusMessage>(config.redisUrl, 'messenger:events', logger, { perTopic: !anonymous });
  const hub = new EventHub(bus, repository, metrics, logger, {
    streamsPerUser: settings.streamsPerUser,
    replayWindowSeconds: settings.replayWindowSeconds,
    replayBatch: 1000,
    gapWaitMs: GAP_WAIT_MS,
    retryMs: 1000,
    writeBoundMs: Math.max(config.db.queryTimeoutMs, config.db.statementTimeoutMs),
  });
  const writes = new WriteBatcher(config.events.writeWindowMs, config.events.writesPerSecond);
  const tickets = createTicketStore(config.redisUrl, settings.ticketTtlSeconds, logger);
  const presence = createPresenceStore(config.redisUrl, settings.presenceTtlSeconds, logger);

  const tellPresence = async (userId: string, online: boolean) => {
    const memberships = await repository.membersOf(userId, settings.presenceMaxMembers);
    hub.ephemeralMany(
      'presence',
      memberships.map(({ chatId, memberId }) => ({ chatId, data: { user_id: memberId, online } })),
    );
  };
  // Going offline waits a little: a client that reconnects at once never looked offline.
  const leaving = new Map<string, NodeJS.Timeout>();
  hub.onPresence((userId, open) => {
    const pending = leaving.get(userId);
    if (open) {
      if (pending) {
        clearTimeout(pending);
        leaving.delete(userId);
        return;
      }
      void (async () => {
        const before = await presence.online([userId]);
        await presence.refresh([userId]);
        if (!before.has(userId)) await tellPresence(userId, true);
      })().catch((error: unknown) => logger.warn({ err: error }, 'presence update failed'));
      return;
    }
    const timer = setTimeout(() => {
      leaving.delete(userId);
      if (hub.isOpenHere(userId)) return;
      void (async () => {
        await presence.remove(userId);
        if (!(await presence.online([userId])).has(userId)) await tellPresence(userId, false);
      })().catch((error: unknown) => logger.warn({ err: error }, 'presence update failed'));
    }, settings.presenceDebounceMs);
    timer.unref();
    leaving.set(userId, timer);
  });

  const typing = async (userId: string | null, chatId: string): Promise<boolean> => {
    if (userId === null) return false;
    const member = await repository.memberOf(chatId, userId);
    if (!member) return false;
    hub.ephemeral('typing', chatId, { user_id: member.memberId, user_name: member.name });
    return true;
  };

  const ws = webSocketUpgrade({
    hub,
    tickets,
    fromHeader: deps.fromHeader,
    maxBufferedBytes: settings.maxBufferedBytes,
    logger,
    typing,
    read: deps.read,
  });

  const timers = [
    setInterval(() => hub.heartbeat(), settings.heartbeatMs),
    setInterval(
      () => {
        presence.refresh(hub.usersHere()).catch(() => undefined);
      },
      (settings.presenceTtlSeconds * 1000) / 3,
    ),
    setInterval(() => {
      repository
        .prune(settings.replayWindowSeconds + RETENTION_MARGIN_SECONDS)
        .catch((error: unknown) => logger.debug({ err: error }, 'pruning old events failed'));
    }, PRUNE_EVERY_MS),
  ];
  for (const timer of timers) timer.unref();

  return {
    name: 'events',
    publisher: hub,
    online: (userIds) => presence.online(userIds),
    routes: (router) =>
      eventsRoutes(router, hub, {
        rules,
        authenticate: deps.authenticate,
        tickets,
        typing,
        settings: {
          maxBufferedBytes: settings.maxBufferedBytes,
          retryMs: settings.retryMs,
          ticketTtlSeconds: settings.ticketTtlSeconds,
          longPollMax: 1000,
        },
        writes,
      }),
    attach: (server: http.Server) => ws.attach(server),
    stop: () => hub.shutdown(),
    dependencies: bus.monitor ? [bus.monitor] : [],
    async close() {
      for (const timer of timers) clearInterval(timer);
      for (const timer of leaving.values()) clearTimeout(timer);
      hub.shutdown();
      ws.close();
      await bus.close();
      await tickets.close();
      await presence.close();
    },
  };
}
