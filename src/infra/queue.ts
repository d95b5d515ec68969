import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { withTimeout } from './timeout.js';

/** What a consumer does with one job; it throws only for a failure worth redelivering. */
export type JobHandler<T> = (job: T, delivery: { redelivered: boolean }) => Promise<void>;

/** A queue of jobs of one kind, JSON-encoded; `isJob` tells a job from a malformed message. */
export interface JobQueue<T> {
  /** Resolves once the job is safely queued (broker confirm), or throws DependencyUnavailableError. */
  publish(job: T): Promise<void>;
  /** Starts taking jobs, at most `prefetch` at a time. */
  consume(handler: JobHandler<T>, prefetch: number): Promise<void>;
  /** The broker's reachability, when there is one. */
  readonly monitor?: DependencyMonitor;
  /** Stops taking jobs and waits for the ones in hand to finish (and be acked). */
  stopConsuming(): Promise<void>;
  close(): Promise<void>;
}

const PUBLISH_TIMEOUT_MS = 2000;
const CONNECT_WAIT_MS = 1000;
/** How long close waits for a connection attempt still in flight (one to a broker that is away never ends). */
const CLOSE_CONNECTING_WAIT_MS = 2000;
/** How long starting to consume waits for the queue's declaration before it goes on without it. */
const CONSUME_DECLARE_WAIT_MS = 5000;
/** How long a job that met a backend outage waits before it goes back on the queue. */
const OUTAGE_REQUEUE_DELAY_MS = 1000;

export interface JobQueueOptions<T> {
  amqpUrl?: string;
  queue: string;
  /** `quorum`: replicated, and a job delivered more than `deliveryLimit` times is dead-lettered. */
  queueType?: 'classic' | 'quorum';
  deliveryLimit?: number;
  /** Tells a job from a malformed message (which goes to the dead-letter queue). */
  isJob: (value: unknown) => value is T;
  /** In-process queue only: jobs with different keys (e.g. users) take turns. */
  fairnessKey?: (job: T) => string;
}

/**
 * The queue exists on the broker with other arguments (another type, delivery limit or dead-letter
 * route) than this process declares. The broker refuses such a declaration on every try, so the
 * queue is not used at all and the message says how to migrate.
 */
export class QueueMismatchError extends Error {
  override name = 'QueueMismatchError';
}

function mismatchMessage(queue: string, type: 'classic' | 'quorum', broker: string): string {
  return (
    `queue "${queue}" exists on the broker with other arguments than SEARCH_QUEUE_TYPE=${type} declares ` +
    `(${broker}). A queue's type cannot change in place. Either set SEARCH_QUEUE_TYPE to the existing ` +
    `queue's type, or migrate: set SEARCH_QUEUE to a new name (e.g. "${queue}.${type}") with ` +
    `SEARCH_QUEUE_TYPE=${type} on the API and on new consumers, keep consumers with the old settings ` +
    `running until "${queue}" is empty, then delete "${queue}" and "${queue}.dead" (rabbitmqctl delete_queue)`
  );
}

/**
 * Jobs run in this process: the embedded default, no broker needed. Waiting jobs are kept per
 * fairness key; a free slot goes to the key with the fewest jobs running, keys taking turns among
 * equals, so one key's backlog delays another key's job by at most the jobs already running.
 */
class InProcessQueue<T> implements JobQueue<T> {
  private handler: JobHandler<T> | undefined;
  private readonly waiting = new Map<string, T[]>();
  private readonly running = new Set<Promise<void>>();
  /** Jobs running per key. */
  private readonly busy = new Map<string, number>();
  /** When each active key last had a job started (a tick count). */
  private readonly served = new Map<string, number>();
  private ticks = 0;
  private limit = 1;

  constructor(
    private readonly logger: Logger,
    private readonly keyOf: (job: T) => string = () => '',
  ) {}

  publish(job: T): Promise<void> {
    const key = this.keyOf(job);
    const jobs = this.waiting.get(key);
    if (jobs) jobs.push(job);
    else this.waiting.set(key, [job]);
    this.pump();
    return Promise.resolve();
  }

  consume(handler: JobHandler<T>, prefetch: number): Promise<void> {
    this.handler = handler;
    this.limit = prefetch;
    this.pump();
    return Promise.resolve();
  }

  /** The waiting job of the key with the fewest jobs running; among equals, the one served least lately. */
  private next(): { key: string; job: T } | undefined {
    let chosen: string | undefined;
    const rank = (key: string) => [this.busy.get(key) ?? 0, this.served.get(key) ?? -1] as const;
    for (const key of this.waiting.keys()) {
      if (chosen === undefined) chosen = key;
      const [busy, served] = rank(key);
      const [chosenBusy, chosenServed] = rank(chosen);
      if (busy < chosenBusy || (busy === chosenBusy && served < chosenServed)) chosen = key;
    }
    if (chosen === undefined) return undefined;
    const jobs = this.waiting.get(chosen)!;
    const job = jobs.shift()!;
    if (!jobs.length) this.waiting.delete(chosen);
    this.served.set(chosen, ++this.ticks);
    return { key: chosen, job };
  }

  private pump(): void {
    const handler = this.handler;
    while (handler && this.running.size < this.limit && this.waiting.size) {
      const { key, job } = this.next()!;
      this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
      const run = handler(job, { redelivered: false })
        .catch((error: unknown) => this.logger.error({ err: error }, 'job failed'))
        .finally(() => {
          this.running.delete(run);
          const busy = this.busy.get(key)! - 1;
          if (busy) this.busy.set(key, busy);
          else this.busy.delete(key);
          // A key with nothing waiting or running is forgotten: the maps hold active keys only.
          if (!busy && !this.waiting.has(key)) this.served.delete(key);
          this.pump();
        });
      this.running.add(run);
    }
  }

  async stopConsuming(): Promise<void> {
    this.handler = undefined;
    await Promise.all([...this.running]);
  }

  close(): Promise<void> {
    return this.stopConsuming();
  }
}

/**
 * RabbitMQ through amqp-connection-manager: a durable queue with a dead-letter queue beside it,
 * persistent messages, publisher confirms, and reconnection by itself after a broker restart.
 */
class RabbitQueue<T> implements JobQueue<T> {
  private readonly connection: AmqpConnectionManager;
  private readonly channel: ChannelWrapper;
  readonly monitor: DependencyMonitor;
  private readonly inFlight = new Set<Promise<void>>();
  private consuming = false;
  private closing = false;
  /** One wait for the channel shared by every request that needs it, so waiting adds no listener per request. */
  private channelReady: Promise<void> | undefined;
  /** Set once the broker refused the queue's declaration (PRECONDITION_FAILED). */
  private mismatch: QueueMismatchError | undefined;
  private readonly refused: Promise<never>;
  private refuse: (error: QueueMismatchError) => void = () => undefined;

  private readonly queue: string;
  private readonly isJob: (value: unknown) => value is T;

  constructor(
    url: string,
    options: JobQueueOptions<T>,
    private readonly logger: Logger,
  ) {
    const { queue } = options;
    const type = options.queueType ?? 'classic';
    this.queue = queue;
    this.refused = new Promise<never>((_, reject) => (this.refuse = reject));
    this.refused.catch(() => undefined);
    this.isJob = options.isJob;
    this.monitor = new DependencyMonitor('message broker', logger);
    this.connection = amqp.connect([url], { heartbeatIntervalInSeconds: 5, reconnectTimeInSeconds: 1 });
    this.connection.on('connect', () => this.monitor.up());
    this.connection.on('disconnect', ({ err }) => this.monitor.down(err));
    this.connection.on('connectFailed', ({ err }) => this.monitor.down(err));
    this.connection.on('error', (error: unknown) => this.failed(error, 'message broker connection failed'));
    const deadLetters = `${queue}.dead`;
    this.channel = this.connection.createChannel({
      json: true,
      confirm: true,
      publishTimeout: PUBLISH_TIMEOUT_MS,
      setup: async (channel: ConfirmChannel) => {
        // A channel the broker closes with an error (an ack for a delivery of an earlier channel, a
        // queue declared with other arguments) emits 'error'; unheard, that would end the process.
        // The wrapper opens a new channel on the next connect.
        channel.on('error', (error: unknown) => this.failed(error, 'message broker channel failed'));
        if (this.mismatch) return;
        // Classic declares no type argument: exactly what existing deployments declared.
        const typed = type === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
        try {
          await channel.assertQueue(deadLetters, { durable: true, arguments: typed });
          await channel.assertQueue(queue, {
            durable: true,
            deadLetterExchange: '',
            deadLetterRoutingKey: deadLetters,
            arguments:
              type === 'quorum' ? { ...typed, 'x-delivery-limit': options.deliveryLimit ?? 20 } : typed,
          });
        } catch (error) {
          if ((error as { code?: unknown }).code !== 406) throw error;
          // PRECONDITION_FAILED: the same answer on every reconnect; say it once and stop using the queue.
          this.mismatch = new QueueMismatchError(mismatchMessage(queue, type, (error as Error).message), {
            cause: error,
          });
          this.logger.fatal({ queue }, this.mismatch.message);
          this.refuse(this.mismatch);
          throw this.mismatch;
        }
      },
    });
    // A setup that fails (the channel or connection closing under it, e.g. at shutdown) is emitted here.
    this.channel.on('error', (error: unknown) => this.failed(error, 'message broker channel setup failed'));
  }

  /** While closing, a channel or connection failing is how closing looks, not an outage. */
  private failed(error: unknown, message: string): void {
    // A refused declaration (406) closes the channel too: the setup reports it, once.
    const refusal = (error as { code?: unknown } | undefined)?.code === 406;
    if (this.closing || this.mismatch || refusal) {
      this.logger.debug({ err: error }, `${message} while closing`);
      return;
    }
    this.logger.error({ err: error }, message);
  }

  async publish(job: T): Promise<void> {
    if (this.mismatch) throw new DependencyUnavailableError('message broker', { cause: this.mismatch });
    // While the broker is away (beyond a short wait, e.g. just after start), answer now rather than
    // buffer a task the client is told failed.
    if (!this.connection.isConnected() && !(await this.connected(CONNECT_WAIT_MS))) {
      throw new DependencyUnavailableError('message broker');
    }
    try {
      await this.channel.sendToQueue(this.queue, job, { persistent: true, contentType: 'application/json' });
    } catch (error) {
      this.monitor.down(error);
      throw new DependencyUnavailableError('message broker', { cause: error });
    }
  }

  private connected(waitMs: number): Promise<boolean> {
    this.channelReady ??= this.channel.waitForConnect().finally(() => (this.channelReady = undefined));
    return withTimeout(Promise.race([this.channelReady, this.refused]), waitMs).then(
      () => true,
      () => false,
    );
  }

  /** Rejects with QueueMismatchError when the broker refuses the queue's declaration. */
  async consume(handler: JobHandler<T>, prefetch: number): Promise<void> {
    // The queue's declaration first (bounded: with the broker away, the consumer starts and waits
    // for it as before): a refusal rejects here, so the consumer process stops with the message. A
    // refusal only met after a later connect is logged once and leaves the queue unused.
    await Promise.race([
      withTimeout(this.channel.waitForConnect(), CONSUME_DECLARE_WAIT_MS).catch(() => undefined),
      this.refused,
    ]);
    this.consuming = true;
    // The prefetch is set by a setup of ours (awaited, on every connect before the consumers come
    // back) rather than the wrapper's consume option, whose basic.qos is not awaited: a channel closing
    // before the broker answers it (a consumer stopped right after it connected) left a rejection
    // nobody handled.
    await this.channel
      .addSetup(async (channel: ConfirmChannel) => {
        await channel.prefetch(prefetch);
      })
      .catch((error: unknown) => this.failed(error, 'message broker channel setup failed'));
    await this.channel.consume(this.queue, (message: ConsumeMessage) => {
      const run = this.handle(message, handler).finally(() => this.inFlight.delete(run));
      this.inFlight.add(run);
    });
  }

  private async handle(message: ConsumeMessage, handler: JobHandler<T>): Promise<void> {
    let job: unknown;
    try {
      job = JSON.parse(message.content.toString());
    } catch {
      job = undefined;
    }
    if (!this.isJob(job)) {
      this.logger.error({ deliveryTag: message.fields.deliveryTag }, 'malformed job: dead-lettered');
      this.channel.nack(message, false, false);
      return;
    }
    try {
      await handler(job, { redelivered: message.fields.redelivered });
      this.channel.ack(message);
    } catch (error) {
      // A backend outage (result store, database) is no fault of the job: it goes back on the queue
      // after a pause (holding its prefetch slot, so the consumer does not spin), however often it
      // was delivered. Any other failure: once back on the queue, then to the dead-letter queue.
      const outage = error instanceof DependencyUnavailableError;
      const requeue = outage || !message.fields.redelivered;
      this.logger.error({ err: error, queue: this.queue, requeue }, 'job failed');
      if (outage) await sleep(OUTAGE_REQUEUE_DELAY_MS);
      this.channel.nack(message, false, requeue);
    }
  }

  async stopConsuming(): Promise<void> {
    if (!this.consuming) return;
    this.consuming = false;
    try {
      await this.channel.cancelAll();
    } catch (error) {
      // The channel closed under the cancel: its consumers went with it (unacked jobs are redelivered).
      this.logger.debug({ err: error }, 'cancelling consumers failed: the channel is closed');
    }
    await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    this.closing = true;
    await this.channel.close();
    // Without a connection, close() waits for the attempt in flight; the manager drops its retries,
    // so if the broker is away that wait would never end.
    const connected = this.connection.isConnected();
    const closed = this.connection.close();
    if (connected) await closed;
    else await withTimeout(closed, CLOSE_CONNECTING_WAIT_MS).catch(() => undefined);
  }
}

export function createJobQueue<T>(options: JobQueueOptions<T>, logger: Logger): JobQueue<T> {
  return options.amqpUrl
    ? new RabbitQueue(options.amqpUrl, options, logger)
    : new InProcessQueue<T>(logger, options.fairnessKey);
}
