import type { RedisClient } from './redis.js';

/** What changed in a change log after a position. */
export interface Changes {
  /** The log's position now (0 for a log never written, or lost). */
  position: number;
  /** Members appended after the position asked about (each once, at most the limit asked for). */
  members: string[];
  /**
   * False when the members cannot be told exactly: more changed than the limit, the log no longer
   * reaches back that far, or it was lost (its position is behind the one asked about).
   */
  complete: boolean;
}

/**
 * A change log: members (ids of things that changed) appended one at a time, each append taking
 * the log's next position; it keeps the latest position of its `keep` most recently appended
 * members. "What changed after position p" is then one read, however many things there are.
 */
export interface ChangeLogStore {
  append(log: string, member: string, keep: number): Promise<void>;
  changesSince(log: string, after: number, limit: number, keep: number): Promise<Changes>;
}

/** In this process's memory: for the single instance of the embedded profile. */
export class MemoryChangeLogs implements ChangeLogStore {
  private readonly logs = new Map<string, MemoryLog>();

  append(log: string, member: string, keep: number): Promise<void> {
    let held = this.logs.get(log);
    if (!held) this.logs.set(log, (held = new MemoryLog()));
    held.append(member, keep);
    return Promise.resolve();
  }

  changesSince(log: string, after: number, limit: number): Promise<Changes> {
    return Promise.resolve(
      this.logs.get(log)?.since(after, limit) ?? { position: 0, members: [], complete: after === 0 },
    );
  }

  clear(): void {
    this.logs.clear();
  }
}

class MemoryLog {
  private position = 0;
  /** Member → its latest position, oldest first (re-inserted on every append). */
  private readonly latest = new Map<string, number>();
  /** Appends in order; entries whose member was appended again later are skipped when read. */
  private recent: { member: string; position: number }[] = [];
  /** The highest position of a member dropped to stay within `keep`. */
  private dropped = 0;

  append(member: string, keep: number): void {
    const position = ++this.position;
    this.latest.delete(member);
    this.latest.set(member, position);
    this.recent.push({ member, position });
    for (const [oldest, at] of this.latest) {
      if (this.latest.size <= keep) break;
      this.latest.delete(oldest);
      this.dropped = Math.max(this.dropped, at);
    }
    if (this.recent.length > 2 * keep) {
      this.recent = [...this.latest].map(([held, at]) => ({ member: held, position: at }));
    }
  }

  since(after: number, limit: number): Changes {
    const members: string[] = [];
    let complete = after <= this.position && this.dropped <= after;
    for (let i = this.recent.length - 1; complete && i >= 0; i--) {
      const { member, position } = this.recent[i]!;
      if (position <= after) break;
      if (this.latest.get(member) !== position) continue;
      if (members.length === limit) complete = false;
      else members.push(member);
    }
    return { position: this.position, members, complete };
  }
}

// KEYS: the log (a sorted set of member → latest position), its position counter. ARGV: member, keep.
const APPEND = `
local position = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], position, ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
return position`;

// KEYS as for APPEND. ARGV: after, limit, keep. Returns {position, complete (0/1), members...}.
// While the log holds fewer than `keep` members none was ever dropped; once full, what was dropped
// had positions below every kept one, so the kept lowest position at or below `after` means that
// nothing appended after `after` is missing.
const SINCE = `
local position = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = tonumber(ARGV[1])
if position < after then return {position, 0} end
if position == after then return {position, 1} end
local complete = 1
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local lowest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if lowest[2] and tonumber(lowest[2]) > after then complete = 0 end
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]) + 1)
if #members > tonumber(ARGV[2]) then
  complete = 0
  table.remove(members)
end
local result = {position, complete}
for _, member in ipairs(members) do result[#result + 1] = member end
return result`;

type Scripted = RedisClient & {
  changeLogAppend(log: string, clock: string, member: string, keep: number): Promise<number>;
  changeLogSince(log: string, clock: string, after: number, limit: number, keep: number): Promise<unknown[]>;
};

/**
 * In Redis, shared by every instance: each operation is one script on the log's slot (`log` holds
 * a hash tag; its position counter is `<log>:position`, in the same slot).
 */
export function redisChangeLogs(client: RedisClient, prefix: string): ChangeLogStore {
  client.defineCommand('changeLogAppend', { numberOfKeys: 2, lua: APPEND });
  client.defineCommand('changeLogSince', { numberOfKeys: 2, lua: SINCE });
  const scripted = client as Scripted;
  const keys = (log: string) => [prefix + log, `${prefix}${log}:position`] as const;
  return {
    async append(log, member, keep) {
      await scripted.changeLogAppend(...keys(log), member, keep);
    },
    async changesSince(log, after, limit, keep) {
      const [position, complete, ...members] = await scripted.changeLogSince(
        ...keys(log),
        after,
        limit,
        keep,
      );
      return { position: Number(position), complete: complete === 1, members: members.map(String) };
    },
  };
}
