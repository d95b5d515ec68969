import { hash, randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import {
  AppError,
  invalidCredentials,
  invalidSession,
  sessionExpired,
  userAlreadyExists,
} from '../../errors.js';
import { Bulkhead, BulkheadFullError } from '../../infra/bulkhead.js';
import type { AuthRepository } from './repository.js';

const DAY_MS = 86_400_000;
const BCRYPT_MAX_BYTES = 72;

export interface Session {
  userId: string;
  /** Unix milliseconds. */
  expiresAt: number;
}

/** Where a logged-in session is remembered between requests (the cache module may provide one). */
export interface SessionCache {
  /** The session behind `tokenHash`: remembered, else from `load` (the database), then remembered. */
  read(tokenHash: string, load: () => Promise<Session | undefined>): Promise<Session | undefined>;
  /**
   * Forgets the session on every instance at once (logout), until `expiresAt` (Unix ms) when it
   * would end anyway. Resolves only once every instance will see it; throws when it cannot be made so.
   */
  revoke(tokenHash: string, expiresAt: number): Promise<void>;
}

/** 503 with a short Retry-After: the hashing queue is full now, not the service down for long. */
const hashingBusy = () => new AppError(503, 'service-unavailable', { 'Retry-After': '1' });

function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export class AuthService {
  // Compared against when the user does not exist, so both failures take the same time.
  private readonly dummyHash: Promise<string>;
  // A hash takes a core for a while (~200 ms at cost 12): unbounded, a flood of logins makes every
  // login wait behind it; bounded, the excess is refused fast and the rest stays quick.
  private readonly hashing: Bulkhead;

  constructor(
    private readonly repository: AuthRepository,
    private readonly options: {
      bcryptCost: number;
      sessionTtlSeconds: number;
      sessionCache?: SessionCache;
      hashing: { concurrency: number; queueMax: number; perClientMax: number };
    },
  ) {
    this.dummyHash = bcrypt.hash(randomBytes(16).toString('hex'), options.bcryptCost);
    const { concurrency, queueMax, perClientMax } = options.hashing;
    this.hashing = new Bulkhead({ concurrency, queueMax, perKeyMax: perClientMax });
  }

  /** Runs a bcrypt operation under the hashing bound, for `client` (its address); full → 503. */
  private async hash<T>(client: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await this.hashing.run(client, operation);
    } catch (error) {
      throw error instanceof BulkheadFullError ? hashingBusy() : error;
    }
  }

  async register(userName: string, password: string, client: string): Promise<{ userId: string }> {
    const passwordHash = await this.hash(client, () => bcrypt.hash(password, this.options.bcryptCost));
    const userId = await this.repository.insertUser(userName, passwordHash);
    if (userId === null) throw userAlreadyExists();
    return { userId };
  }

  async login(
    userName: string,
    password: string,
    client: string,
  ): Promise<{ token: string; userId: string }> {
    const user = await this.repository.findUserByName(userName);
    const tooLong = Buffer.byteLength(password) > BCRYPT_MAX_BYTES;
    const against = user?.passwordHash ?? (await this.dummyHash);
    const matches = await this.hash(client, () => bcrypt.compare(password, against));
    if (!user || !matches || tooLong) throw invalidCredentials();

    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.options.sessionTtlSeconds * 1000);
    await this.repository.insertSession(hashToken(token), user.id, expiresAt);
    await this.repository.deleteExpiredSessions(user.id, DAY_MS);
    return { token, userId: user.id };
  }

  /**
   * A logout answered 200 means no instance accepts the token afterwards. Instances may hold the
   * session in the shared cache, so the revocation goes there first and must be written (else
   * DependencyUnavailableError: 503, the session untouched and still working, and the client
   * retries); only then is the row deleted, for the instances that read the database. The other
   * order would leave, after a failed cache write, a token that this instance rejects (so a retry
   * gets 401) while the others still accept it from their cache.
   */
  async logout(token: string): Promise<void> {
    const tokenHash = hashToken(token);
    const cache = this.options.sessionCache;
    if (cache) {
      const session = await this.repository.findSession(tokenHash);
      if (session && session.expiresAt.getTime() > Date.now()) {
        await cache.revoke(tokenHash, session.expiresAt.getTime());
      }
    }
    await this.repository.deleteSession(tokenHash);
  }

  /** The user a session token belongs to, or 401 `invalid-session-id` / `session-id-expired`. */
  async authenticate(token: string): Promise<string> {
    const tokenHash = hashToken(token);
    const load = async (): Promise<Session | undefined> => {
      const record = await this.repository.findSession(tokenHash);
      return record && { userId: record.userId, expiresAt: record.expiresAt.getTime() };
    };
    const cache = this.options.sessionCache;
    const session = cache ? await cache.read(tokenHash, load) : await load();
    if (!session) throw invalidSession();
    if (session.expiresAt <= Date.now()) throw sessionExpired();
    return session.userId;
  }
}
