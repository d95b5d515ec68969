import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { withTimeout } from './timeout.js';

export interface SearchJob {
  taskId: string;
  userId: string | null;
  query: string;
  chatId?: string;
  memberId?: string;
  after?: string;
  before?: string;
}

/** What a consumer does with one job; it throws only for a failure worth redelivering. */
export type JobHandler = (job: SearchJob, delivery: { redelivered: boolean }) => Promise<void>;

export interface JobQueue {
  /** Resolves once the job is safely queued (broker confirm), or throws DependencyUnavailableError. */
  publish(job: SearchJob): Promise<void>;
  /** Starts taking jobs, at most `prefetch` at a time. */
  consume(handler: JobHandler, prefetch: number): Promise<void>;
  /** Stops taking jobs and waits for the ones in hand to finish (and be acked). */
  stopConsuming(): Promise<void>;
  close(): Promise<void>;
}

const PUBLISH_TIMEOUT_MS = 2000;
const CONNECT_WAIT_MS = 1000;
/** How long a job that met a backend outage waits before it goes back on the queue. */
const OUTAGE_REQUEUE_DELAY_MS = 1000;

function isJob(value: unknown): value is SearchJob {
  const job = value as Partial<SearchJob> | null;
  return typeof job?.taskId === 'string' && typeof job.query === 'string';
}

/** Jobs run in this process: the embedded default, no broker needed. */
class InProcessQueue implements JobQueue {
  private handler: JobHandler | undefined;
  private readonly waiting: SearchJob[] = [];
  private readonly running = new Set<Promise<void>>();
  private limit = 1;

  constructor(private readonly logger: Logger) {}

  publish(job: SearchJob): Promise<void> {
    this.waiting.push(job);
    this.pump();
    return Promise.resolve();
  }

  consume(handler: JobHandler, prefetch: number): Promise<void> {
    this.handler = handler;
    this.limit = prefetch;
    this.pump();
    return Promise.resolve();
  }

  private pump(): void {
    const handler = this.handler;
    while (handler && this.running.size < this.limit && this.waiting.length) {
      const job = this.waiting.shift()!;
      const run = handler(job, { redelivered: false })
        .catch((error: unknown) => this.logger.error({ err: error, taskId: job.taskId }, 'search job failed'))
        .finally(() => {
          this.running.delete(run);
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
class RabbitQueue implements JobQueue {
  private readonly connection: AmqpConnectionManager;
  private readonly channel: ChannelWrapper;
  private readonly monitor: DependencyMonitor;
  private readonly inFlight = new Set<Promise<void>>();
  private consuming = false;

  constructor(
    url: string,
    private readonly queue: string,
    private readonly logger: Logger,
  ) {
    this.monitor = new DependencyMonitor('message broker', logger);
    this.connection = amqp.connect([url], { heartbeatIntervalInSeconds: 5, reconnectTimeInSeconds: 1 });
    this.connection.on('connect', () => this.monitor.up());
    this.connection.on('disconnect', ({ err }) => this.monitor.down(err));
    this.connection.on('connectFailed', ({ err }) => this.monitor.down(err));
    const deadLetters = `${queue}.dead`;
    this.channel = this.connection.createChannel({
      json: true,
      confirm: true,
      publishTimeout: PUBLISH_TIMEOUT_MS,
      setup: async (channel: ConfirmChannel) => {
        await channel.assertQueue(deadLetters, { durable: true });
        await channel.assertQueue(queue, {
          durable: true,
          deadLetterExchange: '',
          deadLetterRoutingKey: deadLetters,
        });
      },
    });
  }

  async publish(job: SearchJob): Promise<void> {
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
    return withTimeout(this.channel.waitForConnect(), waitMs).then(
      () => true,
      () => false,
    );
  }

  async consume(handler: JobHandler, prefetch: number): Promise<void> {
    this.consuming = true;
    await this.channel.consume(
      this.queue,
      (message: ConsumeMessage) => {
        const run = this.handle(message, handler).finally(() => this.inFlight.delete(run));
        this.inFlight.add(run);
      },
      { prefetch },
    );
  }

  private async handle(message: ConsumeMessage, handler: JobHandler): Promise<void> {
    let job: unknown;
    try {
      job = JSON.parse(message.content.toString());
    } catch {
      job = undefined;
    }
    if (!isJob(job)) {
      this.logger.error({ deliveryTag: message.fields.deliveryTag }, 'malformed search job: dead-lettered');
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
      this.logger.error({ err: error, taskId: job.taskId, requeue }, 'search job failed');
      if (outage) await sleep(OUTAGE_REQUEUE_DELAY_MS);
      this.channel.nack(message, false, requeue);
    }
  }

  async stopConsuming(): Promise<void> {
    if (!this.consuming) return;
    this.consuming = false;
    await this.channel.cancelAll();
    await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    await this.channel.close();
    await this.connection.close();
  }
}

export function createJobQueue(options: { amqpUrl?: string; queue: string }, logger: Logger): JobQueue {
  return options.amqpUrl
    ? new RabbitQueue(options.amqpUrl, options.queue, logger)
    : new InProcessQueue(logger);
}
