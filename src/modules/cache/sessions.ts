import type { CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import type { Session, SessionCache } from '../auth/index.js';
import type { LocalLayer } from './local.js';
import { readThrough, type ReadPolicy } from './read-through.js';

interface SessionEntry extends Session {
  storedAt: number;
}

// A session and its revocation marker are read together: one hash tag, one cluster slot.
const sessionKey = (tokenHash: string) => `session:${hashTag(tokenHash)}`;
const revokedKey = (tokenHash: string) => `session:revoked:${hashTag(tokenHash)}`;

/**
 * Sessions by token hash. A logout writes a revocation marker rather than deleting the entry: an
 * instance that read the session from the database just before the logout may still write it
 * back, and the marker (read together with the entry) wins over it: a revoked session is a fresh
 * "no session". Entries never outlive the session's expiry, and a marker lives until then.
 *
 * With `local` (Redis), a session found is also kept in this process for a few seconds; a logout
 * forgets it there once the marker is written, and tells every other instance to.
 */
export function sessionCache(store: CacheStore, policy: ReadPolicy, local?: LocalLayer): SessionCache {
  const { timing } = policy;
  return {
    async read(tokenHash, load) {
      const kept = local?.sessions.get(tokenHash) as Session | undefined;
      if (kept) return kept;
      const since = local?.epoch ?? 0;
      const { value, cache } = await readThrough<Session | undefined>(
        {
          async lookup() {
            const [stored, revoked] = (await store.read([sessionKey(tokenHash), revokedKey(tokenHash)])) as [
              SessionEntry | undefined,
              boolean | undefined,
            ];
            if (revoked === true) return { value: undefined, storedAt: Date.now() };
            // Expiry is checked by the caller, also for a stale entry.
            return (
              stored && {
                value: { userId: stored.userId, expiresAt: stored.expiresAt },
                storedAt: stored.storedAt,
              }
            );
          },
          load,
          async writeBack(session) {
            const now = Date.now();
            if (!session || session.expiresAt <= now) return;
            const ttlMs = Math.min(timing.keepMs, session.expiresAt - now);
            await store.write(sessionKey(tokenHash), { ...session, storedAt: now }, ttlMs);
          },
        },
        policy,
      );
      // A stale session (the database down) is not made to look fresh here.
      if (local && value && cache !== 'STALE')
        local.sessions.set(tokenHash, value, since, value.expiresAt - Date.now());
      return value;
    },

    async revoke(tokenHash, expiresAt) {
      // Not writeSurely: a revocation kept in this process's memory is lost if it stops, and
      // meanwhile the other instances accept the token. It lives as long as the session could, so
      // no entry written back later (or kept stale) can outlive it.
      const ttlMs = Math.max(expiresAt - Date.now(), 0) + timing.markerMs - timing.keepMs;
      await store.write(revokedKey(tokenHash), true, ttlMs);
      // Only now: a read that began before the marker was written may not keep what it found. A
      // publish that fails fails the logout (503, the client retries): another instance could
      // otherwise go on accepting the token from its memory.
      await local?.invalidate('session', tokenHash);
    },
  };
}
