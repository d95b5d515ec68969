/**
 * The fan-out path alone, to see what it costs: one process holds STREAMS SSE streams of one chat
 * (the events module's hub and SSE sink, an in-process bus, no database: the chat's starting point is
 * given), publishes RATE events/s for SECONDS, and a second process reads the streams over loopback
 * (raw sockets; 1 in 10 parsed to time the events). Reports the CPU per event and stream of each side
 * and the publish→receive latency.
 *
 *   npx tsx bench/fanout-hub.ts     STREAMS=500 RATE=100 SECONDS=10 WINDOW_MS=20 WRITES_PER_SECOND=10000
 *
 * A profile of the serving side: NODE_OPTIONS= npx tsx --cpu-prof bench/fanout-hub.ts (the reader is
 * a child process started without the flag).
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ChatEvent } from '../src/modules/events/model.js';
import type { EventsRepository } from '../src/modules/events/repository.js';

// The built modules (`npm run build`), as the API runs them: tsx's own output differs (class fields).
const built = (module: string) => import(new URL(`../dist/src/${module}`, import.meta.url).href);
const { createBus } = (await built('infra/bus.js')) as typeof import('../src/infra/bus.js');
const { createLogger } = (await built('infra/logger.js')) as typeof import('../src/infra/logger.js');
const { createMetrics } = (await built('infra/metrics.js')) as typeof import('../src/infra/metrics.js');
const { WriteBatcher } = (await built(
  'modules/events/batcher.js',
)) as typeof import('../src/modules/events/batcher.js');
const { DeferredSink, EventHub } = (await built(
  'modules/events/hub.js',
)) as typeof import('../src/modules/events/hub.js');
const { sseSink } = (await built('modules/events/sse.js')) as typeof import('../src/modules/events/sse.js');

const STREAMS = Number(process.env.STREAMS ?? 500);
const RATE = Number(process.env.RATE ?? 100);
const SECONDS = Number(process.env.SECONDS ?? 10);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 20);
const WRITES_PER_SECOND = Number(process.env.WRITES_PER_SECOND ?? 10_000);
const PROBE_EVERY = 10;
/** Chats each stream's user is in (the events all go to the first): a user in many chats costs memory per stream. */
const CHATS = Number(process.env.CHATS ?? 1);
const CHAT = '0b6f3c1e-7d2a-4a51-9a3e-5f1c2d3e4f50';
const now = () => performance.timeOrigin + performance.now();

/** The reading side: STREAMS raw connections; every PROBE_EVERY-th one's events are timed. */
async function reader(port: number): Promise<void> {
  const latencies: number[] = [];
  let bytes = 0;
  const sockets: net.Socket[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.write(`GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nX-User: u${i}\r\n\r\n`);
    const probe = i % PROBE_EVERY === 0;
    if (probe) socket.setEncoding('latin1');
    socket.on('data', (chunk: string | Buffer) => {
      bytes += chunk.length;
      if (!probe) return;
      const at = now();
      for (
        let k = (chunk as string).indexOf('"sent":');
        k >= 0;
        k = (chunk as string).indexOf('"sent":', k + 7)
      ) {
        latencies.push(at - Number.parseFloat((chunk as string).slice(k + 7, k + 27)));
      }
    });
    sockets.push(socket);
    if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.send!({ ready: true });
  process.on('message', (message: { stop?: boolean }) => {
    if (!message.stop) return;
    const cpu = process.cpuUsage();
    for (const socket of sockets) socket.destroy();
    process.send!({ latencies, bytes, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
  });
}

const otherChats = Array.from(
  { length: CHATS - 1 },
  (_, n) => `0b6f3c1e-7d2a-4a51-9a3e-${String(n).padStart(12, '0')}`,
);
const emptyRepository = {
  chatsOf: () =>
    Promise.resolve(
      new Map([
        [CHAT, { seq: 0, activeAt: Date.now() / 1000 }],
        ...otherChats.map((chatId) => [chatId, { seq: 7, activeAt: 1 }] as const),
      ]),
    ),
  after: () => Promise.resolve([]),
} as unknown as EventsRepository;

async function serve(): Promise<void> {
  const logger = createLogger('warn');
  const metrics = createMetrics();
  const bus = createBus<ChatEvent>(undefined, 'bench', logger);
  const hub = new EventHub(bus, emptyRepository, metrics, logger, {
    streamsPerUser: 10,
    replayWindowSeconds: 3600,
    replayBatch: 1000,
    gapWaitMs: 100,
    retryMs: 1000,
    writeBoundMs: 10_000,
  });
  const writes = new WriteBatcher(WINDOW_MS, WRITES_PER_SECOND);
  const settings = { maxBufferedBytes: 1 << 20, retryMs: 1000 };
  let open = 0;
  const server = http.createServer((req, res) => {
    const deferred = new DeferredSink('sse');
    void hub.open(String(req.headers['x-user']), undefined, deferred).then((stream) => {
      req.socket.setNoDelay(true);
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8' });
      res.write('retry: 1000\n\n');
      deferred.attach(sseSink(res, settings, writes));
      res.once('close', () => hub.close(stream));
      open++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const child = fork(fileURLToPath(import.meta.url), ['reader', String(port)], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise<void>((resolve) => child.once('message', () => resolve()));
  while (open < STREAMS) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 500));

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const before = process.cpuUsage();
  const started = performance.now();
  const total = RATE * SECONDS;
  for (let n = 1; n <= total; n++) {
    const due = started + ((n - 1) * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    hub.published({
      chatId: CHAT,
      seq: n,
      kind: 'message',
      userId: 'sender',
      data: {
        chat_id: CHAT,
        message_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
        user_id: '11111111-2222-4333-8444-555555555555',
        user_name: 'fan-out sender',
        text: `fan-out ${n}`,
        created_at: new Date().toISOString(),
        sent: now(),
      },
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const used = process.cpuUsage(before);
  loop.disable();
  const seconds = (performance.now() - started) / 1000;
  child.send({ stop: true });
  const result = await new Promise<{ latencies: number[]; bytes: number; cpuSeconds: number }>((resolve) =>
    child.once('message', resolve),
  );
  const frames = total * STREAMS;
  const sorted = result.latencies.sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const serverCpu = (used.user + used.system) / 1e6;
  process.stdout.write(
    `${STREAMS} streams in ${CHATS} chats, ${RATE} events/s for ${SECONDS} s, window ${WINDOW_MS} ms (${writes.window.toFixed(0)} ms at the end, ${WRITES_PER_SECOND} writes/s at most): ` +
      `serving ${serverCpu.toFixed(2)} s CPU over ${seconds.toFixed(1)} s = ${((serverCpu * 1e6) / frames).toFixed(2)} µs/frame; ` +
      `reader ${((result.cpuSeconds * 1e6) / frames).toFixed(2)} µs/frame (whole run); ` +
      `latency p50 ${pick(0.5).toFixed(1)} ms, p99 ${pick(0.99).toFixed(1)} ms over ${sorted.length} ` +
      `(${(result.bytes / 1e6).toFixed(1)} MB read); serving event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, ` +
      `max ${(loop.max / 1e6).toFixed(1)} ms\n`,
  );
  child.kill();
  hub.shutdown();
  server.close();
  await bus.close();
}

if (process.argv[2] === 'reader') void reader(Number(process.argv[3]));
else void serve();
