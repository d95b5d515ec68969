import assert from 'node:assert/strict';
import { openSse, openWs } from './support/events.js';
import { registerAndLogin } from './support/fixtures.js';
import { eventually, killLeftovers, spawnApi } from './support/spawn.js';

describe('real-time events in the api process', function () {
  this.timeout(90_000);
  afterEach(killLeftovers);

  it('when SIGTERM arrives with streams open, then SSE gets the retry hint, the WebSocket closes with 1001 and the process exits 0 without waiting out SHUTDOWN_TIMEOUT_MS', async () => {
    const app = await spawnApi({ SHUTDOWN_TIMEOUT_MS: '60000' });
    // "listening" comes before the schema check ends; /v1 answers 503 until /ready says 200.
    await eventually(async () => (await app.api.get('/ready')).status === 200, 20_000);
    const bob = await registerAndLogin(app.api);
    const sse = await openSse(`${app.url}/v1/events`, bob.auth);
    const ws = await openWs(`${app.url}/v1/ws`, bob.auth);
    assert.equal(sse.status, 200);
    const signalled = Date.now();
    const code = await app.stop('SIGTERM', 30_000);
    const tookMs = Date.now() - signalled;
    assert.equal(code, 0);
    await sse.until(() => sse.closed, 10_000, 'the SSE stream to end');
    await ws.until(() => ws.closed, 10_000, 'the WebSocket to close');
    // One `retry:` when the stream opened, one more as the server shuts down.
    assert.equal(sse.closeInfo.retries, 2);
    assert.equal(ws.closeInfo.code, 1001);
    // Streams never end by themselves: had they held the server open, exit would take the full 60 s.
    assert.ok(tookMs < 30_000, `exited after ${tookMs} ms`);
  });
});
