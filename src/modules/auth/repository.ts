import { run, statement, type Knex } from '../../infra/db.js';

export interface UserRecord {
  id: string;
  passwordHash: string;
}

export interface SessionRecord {
  userId: string;
  expiresAt: Date;
}

const UNIQUE_VIOLATION = '23505';

/** Read on every authenticated request that no cache answers. */
const FIND_SESSION = statement<{ tokenHash: string }, { userId: string; expiresAt: Date }>(
  'auth.session',
  'SELECT user_id AS "userId", expires_at AS "expiresAt" FROM sessions WHERE token_hash = :tokenHash',
);

export class AuthRepository {
  constructor(private readonly knex: Knex) {}

  /** Returns the new user's id, or null when the name is taken. */
  async insertUser(name: string, passwordHash: string): Promise<string | null> {
    try {
      const [row] = await this.knex('users').insert({ name, password_hash: passwordHash }).returning('id');
      return (row as { id: string }).id;
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) return null;
      throw error;
    }
  }

  async findUserByName(name: string): Promise<UserRecord | undefined> {
    const row = await this.knex('users').where({ name }).first('id', 'password_hash');
    return row ? { id: row.id, passwordHash: row.password_hash } : undefined;
  }

  async insertSession(tokenHash: string, userId: string, expiresAt: Date): Promise<void> {
    await this.knex('sessions').insert({ token_hash: tokenHash, user_id: userId, expires_at: expiresAt });
  }

  async findSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const [row] = (await run(this.knex, FIND_SESSION, { tokenHash })).rows;
    return row && { userId: row.userId, expiresAt: new Date(row.expiresAt) };
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.knex('sessions').where({ token_hash: tokenHash }).delete();
  }

  /** Sessions expired for longer than `graceMs` are forgotten (until then they answer "expired"). */
  async deleteExpiredSessions(userId: string, graceMs: number): Promise<void> {
    await this.knex('sessions')
      .where({ user_id: userId })
      .andWhere('expires_at', '<', new Date(Date.now() - graceMs))
      .delete();
  }
}
