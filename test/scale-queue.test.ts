import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import { pino } from 'pino';
import { DependencyUnavailableError } from '../src/errors.js';
import { createJobQueue, QueueMismatchError, type JobQueue } from '../src/infra/queue.js';
import { profile } from './support/profile.js';
import { Broker, freshQueueName } from './support/search-helpers.js';
import { killLeftovers, launch } from './support/spawn.js';

interface Job {
  n: number;
}
const isJob = (value: unknown): value is Job => typeof (value as Job | undefined)?.n === 'number';

/** The first truthy answer of `attempt`, polled until `timeoutMs`. */
async function poll<T>(attempt: () => Promise<T | false | undefined> | T, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A logger whose lines are kept, to count what a queue said. */
function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

// Needs a RabbitMQ (3.8+ for quorum queues): the services profile with AMQP_URL.
if (profile.services && process.env.AMQP_URL) {
  const amqpUrl = process.env.AMQP_URL;

  describe('search queue type (RabbitMQ quorum queues)', function () {
    this.timeout(60_000);
    const queues = new Set<string>();
    const open: JobQueue<Job>[] = [];
    const queueName = () => {
      const name = freshQueueName();
      queues.add(name);
      return name;
    };
    const jobQueue = (queue: string, queueType: 'classic' | 'quorum', logger = recordingLogger().logger) => {
      const created = createJobQueue<Job>({ amqpUrl, queue, queueType, deliveryLimit: 2, isJob }, logger);
      open.push(created);
      return created;
    };

    afterEach(async () => {
      await Promise.all(open.splice(0).map((queue) => queue.close().catch(() => undefined)));
    });
    after(async () => {
      await killLeftovers();
      await Broker.deleteQueues(amqpUrl, queues);
    });

    it('when SEARCH_QUEUE_TYPE=quorum, then a job is published, consumed and acked through a quorum queue', async () => {
      const queue = queueName();
      const jobs = jobQueue(queue, 'quorum');
      const seen: number[] = [];
      await jobs.consume(async (job) => {
        seen.push(job.n);
        await Promise.resolve();
      }, 1);
      await jobs.publish({ n: 7 });
      await poll(() => seen.length === 1, 10_000, 'the job was consumed');
      assert.deepEqual(seen, [7]);
      // The broker holds it as a quorum queue: a redeclaration with the quorum argument is equivalent.
      const model = await amqplib.connect(amqpUrl);
      try {
        const channel = await model.createChannel();
        const ok = await channel.assertQueue(queue, {
          durable: true,
          deadLetterExchange: '',
          deadLetterRoutingKey: `${queue}.dead`,
          arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 },
        });
        assert.equal(ok.messageCount, 0);
      } finally {
        await model.close();
      }
    });

    it("when a job's consumer dies on it more often than the delivery limit, then the job is dead-lettered instead of redelivered forever", async () => {
      const queue = queueName();
      const jobs = jobQueue(queue, 'quorum');
      await jobs.publish({ n: 1 });
      // A consumer that dies holding the job: its channel closes without an ack (as on SIGKILL).
      const model = await amqplib.connect(amqpUrl);
      try {
        for (let delivery = 1; delivery <= 3; delivery++) {
          const channel = await model.createChannel();
          const message = await poll(() => channel.get(queue, { noAck: false }), 10_000, 'a delivery');
          assert.ok(message, `delivery ${delivery}`);
          assert.equal(message.fields.redelivered, delivery > 1);
          await channel.close();
        }
        const channel = await model.createChannel();
        await poll(
          async () => (await channel.checkQueue(`${queue}.dead`)).messageCount === 1,
          10_000,
          'the job in the dead-letter queue',
        );
        assert.equal((await channel.checkQueue(queue)).messageCount, 0);
        const dead = await channel.get(`${queue}.dead`, { noAck: true });
        assert.ok(dead);
        assert.deepEqual(JSON.parse(dead.content.toString()), { n: 1 });
      } finally {
        await model.close();
      }
    });

    for (const [existing, declared] of [
      ['classic', 'quorum'],
      ['quorum', 'classic'],
    ] as const) {
      it(`when the queue exists as ${existing} and ${declared} is declared, then consume fails once with a message saying how to migrate, and publish answers unavailable at once`, async () => {
        const queue = queueName();
        const first = jobQueue(queue, existing);
        await first.publish({ n: 1 });
        await first.close();

        const { logger, lines } = recordingLogger();
        const second = jobQueue(queue, declared, logger);
        await assert.rejects(
          second.consume(() => Promise.resolve(), 1),
          (error: Error) => {
            assert.ok(error instanceof QueueMismatchError, String(error));
            assert.match(error.message, new RegExp(`SEARCH_QUEUE_TYPE=${declared}`));
            assert.match(error.message, /migrate: set SEARCH_QUEUE to a new name/);
            assert.match(error.message, /x-queue-type/);
            return true;
          },
        );
        await assert.rejects(second.publish({ n: 2 }), DependencyUnavailableError);
        // No error loop: the refusal is said once, and nothing more is tried meanwhile.
        await sleep(1500);
        const fatal = lines.filter((line) => line.level >= 60);
        assert.equal(fatal.length, 1, JSON.stringify(lines));
        assert.equal(lines.filter((line) => line.level >= 50).length, 1, JSON.stringify(lines));
        // The job queued before is still there, untouched, for the old consumers.
        const broker = await Broker.connect(amqpUrl);
        try {
          assert.equal(await broker.depth(queue), 1);
        } finally {
          await broker.close();
        }
      });
    }

    it('when `main.js consumer` is started with SEARCH_QUEUE_TYPE=quorum over a classic queue, then it exits non-zero with the migration message, once', async () => {
      const queue = queueName();
      const first = jobQueue(queue, 'classic');
      await first.publish({ n: 1 });
      await first.close();
      const consumer = launch(
        {
          DATABASE_URL: process.env.DATABASE_URL,
          REDIS_URL: process.env.REDIS_URL,
          AMQP_URL: amqpUrl,
          SEARCH_QUEUE: queue,
          SEARCH_QUEUE_TYPE: 'quorum',
          LOG_LEVEL: 'info',
        },
        'consumer',
      );
      const exit = await consumer.exited;
      assert.notEqual(exit.code, 0, consumer.lines.join('\n'));
      const refusals = consumer
        .logs()
        .filter((line) => line.level === 60 && /migrate:/.test(String(line.msg)));
      assert.equal(refusals.length, 1, consumer.lines.join('\n'));
      assert.match(String(refusals[0]!.msg), /SEARCH_QUEUE_TYPE=quorum/);
      assert.equal(consumer.logs().filter((line) => line.msg === 'consumer started').length, 0);
    });
  });
}
