import { createHash, randomBytes } from 'node:crypto';
import { authFailed } from '../../errors.js';
import type { Logger } from '../../infra/logger.js';
import { connectRedis, type RedisConnection } from '../../infra/redis.js';

/** The anonymous caller (authentication off) is stored as this. */
const ANONYMOUS = '-';

/**
 * Single-use, short-lived tickets standing for a session in a URL (browsers cannot set headers on
 * EventSource or WebSocket): the session id itself never travels in one. Only a hash of each ticket
 * is stored; redeeming deletes it. In Redis with REDIS_URL (any instance may redeem), else in memory.
 */
export interface TicketStore {
  issue(userId: string | null): Promise<string>;
  /** The ticket's user, or 401 `auth-failed` for an unknown, used or expired ticket. */
  redeem(ticket: string): Promise<string | null>;
  close(): Promise<void>;
}

const hash = (ticket: string) => createHash('sha256').update(ticket).digest('base64url');

export function createTicketStore(
  redisUrl: string | undefined,
  ttlSeconds: number,
  logger: Logger,
): TicketStore {
  const fresh = () => randomBytes(24).toString('base64url');
  const decode = (value: string | null | undefined): string | null => {
    if (value === null || value === undefined) throw authFailed();
    return value === ANONYMOUS ? null : value;
  };
  if (redisUrl) {
    const redis: RedisConnection = connectRedis(redisUrl, 'event tickets', logger);
    return {
      async issue(userId) {
        const ticket = fresh();
        await redis.client.set(`messenger:ticket:${hash(ticket)}`, userId ?? ANONYMOUS, 'EX', ttlSeconds);
        return ticket;
      },
      async redeem(ticket) {
        return decode(await redis.client.getdel(`messenger:ticket:${hash(ticket)}`));
      },
      close: () => redis.close(),
    };
  }
  const tickets = new Map<string, { userId: string; expiresAt: number }>();
  return {
    issue(userId) {
      const now = Date.now();
      for (const [key, entry] of tickets) if (entry.expiresAt <= now) tickets.delete(key);
      const ticket = fresh();
      tickets.set(hash(ticket), { userId: userId ?? ANONYMOUS, expiresAt: now + ttlSeconds * 1000 });
      return Promise.resolve(ticket);
    },
    redeem(ticket) {
      const key = hash(ticket);
      const entry = tickets.get(key);
      tickets.delete(key);
      return Promise.resolve(decode(entry && entry.expiresAt > Date.now() ? entry.userId : undefined));
    },
    close: () => Promise.resolve(),
  };
}
