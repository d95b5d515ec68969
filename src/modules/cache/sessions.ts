import type { CacheStore } from '../../infra/cache.js';
import type { Session, SessionCache } from '../auth/index.js';
import type { Timing } from './timing.js';

interface SessionEntry extends Session {
  storedAt: number;
}

const sessionKey = (tokenHash: string) => `session:${tokenHash}`;
const revokedKey = (tokenHash: string) => `session:revoked:${tokenHash}`;

/**
 * Sessions by token hash. A logout writes a revocation marker rather than deleting the entry: an
 * instance that read the session from the database just before the logout may still write it
 * back, and the marker (read together with the entry) wins over it. Entries never outlive the
 * session's expiry.
 */
export function sessionCache(
  store: CacheStore,
  timing: Timing,
  isUnavailable: (error: unknown) => boolean,
): SessionCache {
  return {
    async read(tokenHash, load) {
      const consultedAt = Date.now();
      let entry: SessionEntry | undefined;
      let reachable = false;
      try {
        const [stored, revoked] = (await store.read([sessionKey(tokenHash), revokedKey(tokenHash)])) as [
          SessionEntry | undefined,
          boolean | undefined,
        ];
        if (revoked === true) return undefined;
        entry = stored;
        reachable = true;
      } catch {
        // No cache now: the database answers, and nothing is written back.
      }
      const remembered = entry && { userId: entry.userId, expiresAt: entry.expiresAt };
      if (entry && timing.isFresh(entry.storedAt)) return remembered;

      let session: Session | undefined;
      try {
        session = await load();
      } catch (error) {
        // stale-if-error: not revoked (the marker was read with it), and expiry is checked by the caller.
        if (remembered && isUnavailable(error)) return remembered;
        throw error;
      }
      const now = Date.now();
      if (session && reachable && session.expiresAt > now && timing.mayWriteBack(consultedAt)) {
        const ttlMs = Math.min(timing.keepMs, session.expiresAt - now);
        await store.write(sessionKey(tokenHash), { ...session, storedAt: now }, ttlMs).catch(() => undefined);
      }
      return session;
    },

    async revoke(tokenHash) {
      await store.writeSurely(revokedKey(tokenHash), true, timing.markerMs);
    },
  };
}
