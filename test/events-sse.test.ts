import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WriteBatcher } from '../src/modules/events/batcher.js';
import type { Frame, Sink } from '../src/modules/events/hub.js';
import { sseSink } from '../src/modules/events/sse.js';
import { wsSink } from '../src/modules/events/ws.js';
import type { WebSocket } from 'ws';

/** An SSE response on a real connection, as the route opens it, and what its client reads. */
async function sseOver(
  maxBufferedBytes: number,
  writes: WriteBatcher,
): Promise<{ sink: Sink; received: () => string; close: () => void }> {
  let sink!: Sink;
  let text = '';
  const servers: http.Server[] = [];
  const opened = new Promise<void>((resolve) => {
    const server = http.createServer((_req, res) => {
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
      sink = sseSink(res, { maxBufferedBytes, retryMs: 1000 }, writes);
      resolve();
    });
    servers.push(server);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
      });
    });
  });
  await opened;
  return {
    sink,
    received: () => text,
    close: () => {
      sink.end();
      for (const server of servers) server.close();
    },
  };
}

const presence = (n: number): Frame => ({
  type: 'presence',
  data: { chat_id: 'c', user_id: `u${n}`, online: true },
});
const message = (n: number): Frame => ({
  type: 'message',
  id: `id${n}`,
  data: { chat_id: 'c', text: `m${n}` },
});

describe('an SSE stream’s bound on what waits for its client', () => {
  it('when typing and presence pile up past half the bound, then they are dropped and the stream stays open; stored events past the bound still close it', async () => {
    // A window long enough that nothing is written meanwhile: everything waits in the stream.
    const writes = new WriteBatcher(60_000);
    const sse = await sseOver(4096, writes);
    try {
      const frameBytes = Buffer.byteLength(`event: presence\ndata: ${JSON.stringify(presence(0).data)}\n\n`);
      for (let n = 0; n < 1000; n++) assert.equal(sse.sink.write(presence(n)), true, `presence ${n} refused`);
      let kept = 0;
      for (let n = 0; n < 100; n++) {
        if (!sse.sink.write(message(n))) break;
        kept++;
      }
      assert.ok(kept > 10, `only ${kept} stored events fit beside the presence kept`);
      assert.ok(kept < 100, 'stored events past the bound were taken');
      writes.flushAll();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const presenceKept = sse.received().split('event: presence').length - 1;
      assert.ok(
        presenceKept > 0 && presenceKept * frameBytes <= 2048 + frameBytes,
        `${presenceKept} presence frames kept`,
      );
      assert.equal(sse.received().split('event: message').length - 1, kept + 1);
    } finally {
      sse.close();
    }
  });
});

describe('a WebSocket stream’s bound on what waits for its client', () => {
  it('when typing and presence pile up past half the bound, then they are dropped and the stream stays open; stored events past the bound still close it', () => {
    // A socket whose client reads nothing: what is sent stays buffered.
    const sent: string[] = [];
    const socket = {
      OPEN: 1,
      readyState: 1,
      bufferedAmount: 0,
      on() {},
      send(text: string) {
        sent.push(text);
        this.bufferedAmount += Buffer.byteLength(text);
      },
    };
    const sink = wsSink(socket as unknown as WebSocket, 4096);
    for (let n = 0; n < 1000; n++) assert.equal(sink.write(presence(n)), true, `presence ${n} refused`);
    const presenceKept = sent.length;
    assert.ok(socket.bufferedAmount <= 2048 + 200, `${socket.bufferedAmount} bytes of presence kept`);
    let kept = 0;
    while (kept < 1000 && sink.write(message(kept))) kept++;
    assert.ok(kept > 10 && kept < 1000, `${kept} stored events before the bound`);
    assert.equal(sent.length, presenceKept + kept + 1);
  });
});
