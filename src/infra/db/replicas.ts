import type { Knex } from 'knex';
import type { Logger } from '../logger.js';
import type { DependencyMonitor } from '../monitor.js';
import { isConnectionError, QUERY_CANCELED } from './faults.js';
import { run, statement } from './statements.js';

/** A WAL position (`16/B374D848`) as a number that compares. */
function lsn(text: string): bigint {
  const [high = '0', low = '0'] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** Where the primary's WAL ends now (every commit so far is before it). */
const INSERT_LSN = statement<object, { lsn: string }>(
  'replicas.insert-lsn',
  'SELECT pg_current_wal_insert_lsn()::text AS lsn',
);
/** How far a replica has replayed; null on a server that is not in recovery. */
const REPLAY_LSN = statement<object, { lsn: string | null }>(
  'replicas.replay-lsn',
  'SELECT pg_last_wal_replay_lsn()::text AS lsn',
);

/** How long a replica that failed is left alone before it is tried again. */
const REPLICA_REST_MS = 2000;
const REPLAY_POLL_MS = 10;

export interface Replica {
  knex: Knex;
  monitor: DependencyMonitor;
  /** The furthest replay position seen: a target at or below it needs no question to the replica. */
  replayed: bigint;
  restUntil: number;
}

/**
 * Read routing over streaming replicas. The target of a read is the primary's WAL insert position
 * when it starts (one cheap query, no table touched; the insert position, not the write position:
 * with synchronous_commit off a commit is acknowledged before its WAL is written): a replica that has replayed that far holds every
 * commit that preceded the read, the caller's own and everyone else's, so what it answers (and what
 * the cache keeps of it) is never behind what the primary would have answered at that moment.
 */
export class ReplicaReads {
  private next = 0;
  readonly counts = { primary: 0, replica: 0 };

  constructor(
    private readonly primary: Knex,
    private readonly replicas: Replica[],
    private readonly waitMs: number,
    private readonly logger: Logger,
  ) {}

  async read<T>(query: (knex: Knex) => Promise<T>): Promise<T> {
    const replica = this.pick();
    if (replica) {
      const { rows } = await run(this.primary, INSERT_LSN, {});
      try {
        if (await this.caughtUp(replica, lsn(rows[0]!.lsn))) {
          const result = await query(replica.knex);
          replica.monitor.up();
          this.counts.replica++;
          return result;
        }
      } catch (error) {
        // A statement past its statement_timeout would be as slow on the primary: the caller's answer.
        if ((error as { code?: unknown }).code === QUERY_CANCELED) throw error;
        // Whatever else the replica's failure (gone, too slow, a query cancelled by a recovery conflict),
        // the primary answers instead; a connection failure rests the replica for a while.
        if (isConnectionError(error)) {
          replica.restUntil = Date.now() + REPLICA_REST_MS;
          replica.monitor.down(error);
        } else {
          this.logger.warn({ err: error }, 'replica read failed: read from the primary');
        }
      }
    }
    const result = await query(this.primary);
    this.counts.primary++;
    return result;
  }

  /** The next replica in turn that is not resting. */
  private pick(): Replica | undefined {
    const now = Date.now();
    for (let i = 0; i < this.replicas.length; i++) {
      const replica = this.replicas[(this.next + i) % this.replicas.length]!;
      if (replica.restUntil <= now) {
        this.next = (this.next + i + 1) % this.replicas.length;
        return replica;
      }
    }
    return undefined;
  }

  /** True once the replica has replayed `target`; false when it is still behind after the wait. */
  private async caughtUp(replica: Replica, target: bigint): Promise<boolean> {
    const deadline = Date.now() + this.waitMs;
    while (replica.replayed < target) {
      const { rows } = await run(replica.knex, REPLAY_LSN, {});
      const replayed = rows[0]?.lsn;
      // Not in recovery: a server that takes writes itself is never behind.
      if (replayed == null) return true;
      replica.replayed = lsn(replayed) > replica.replayed ? lsn(replayed) : replica.replayed;
      if (replica.replayed >= target) return true;
      if (Date.now() + REPLAY_POLL_MS > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS));
    }
    return true;
  }
}
