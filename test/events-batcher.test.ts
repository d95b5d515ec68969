import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WriteBatcher } from '../src/modules/events/batcher.js';

/** A stream's writer as the batcher sees it: counts its flushes. */
function target() {
  const flushes: number[] = [];
  return { flushes, flush: () => void flushes.push(performance.now()) };
}

describe('SSE write batching (EVENTS_WRITE_WINDOW_MS)', () => {
  it('when a stream has been quiet, then its first event is written on the next timer turn, not after the window', async () => {
    const writes = new WriteBatcher(5_000);
    const one = target();
    writes.mark(one);
    await sleep(50);
    assert.equal(one.flushes.length, 1, 'the first write waited for the window');
  });

  it('when events keep coming, then each stream is written once per window, with everything marked meanwhile', async () => {
    const windowMs = 1000;
    const writes = new WriteBatcher(windowMs);
    const [one, two] = [target(), target()];
    writes.mark(one);
    await sleep(20);
    assert.equal(one.flushes.length, 1, 'the first write waited');
    // Within the window: several events for both streams.
    writes.mark(one);
    writes.mark(two);
    writes.mark(one);
    await sleep(100);
    assert.equal(one.flushes.length + two.flushes.length, 1, 'a write went out before the window ended');
    await sleep(windowMs + 200);
    assert.equal(one.flushes.length, 2, 'one stream marked twice in a window is written once');
    assert.equal(two.flushes.length, 1, 'the other stream was not written with the window');
    // The window counts from the previous write, not from the mark.
    assert.ok(
      one.flushes[1]! - one.flushes[0]! >= windowMs - 5,
      `${one.flushes[1]! - one.flushes[0]!} ms apart`,
    );
  });

  it('when the window is 0, then every event is written on the next timer turn', async () => {
    const writes = new WriteBatcher(0);
    const one = target();
    for (let i = 0; i < 3; i++) {
      writes.mark(one);
      await sleep(10);
    }
    assert.equal(one.flushes.length, 3, 'a write was held');
  });
});
