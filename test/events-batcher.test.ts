import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FLUSH_SLICE, MAX_WINDOW_MS, WriteBatcher } from '../src/modules/events/batcher.js';

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

describe('SSE write batching under load (EVENTS_WRITES_PER_SECOND)', () => {
  it('when many streams have something to write, then the window grows to keep their writes within the bound, and shrinks back when few do', async () => {
    // 100 writes a second at most: 20 streams written at once → one flush every 200 ms.
    const writes = new WriteBatcher(10, 100);
    const many = Array.from({ length: 20 }, target);
    for (const one of many) writes.mark(one);
    await sleep(30);
    assert.equal(writes.window, 200, 'the window did not grow with the streams flushed');
    for (const one of many) writes.mark(one);
    await sleep(100);
    assert.equal(many[0]!.flushes.length, 1, 'written again within the grown window');
    await sleep(250);
    assert.equal(many[0]!.flushes.length, 2, 'not written once the grown window passed');
    const gap = many[0]!.flushes[1]! - many[0]!.flushes[0]!;
    assert.ok(gap >= 195, `flushes ${gap.toFixed(0)} ms apart`);
    // One stream alone: back to the configured window.
    writes.mark(many[0]!);
    await sleep(250);
    assert.equal(writes.window, 10, 'the window stayed grown with one stream');
  });

  it('when the bound is 0, then the window stays as configured however many streams are written', async () => {
    const writes = new WriteBatcher(10, 0);
    for (const one of Array.from({ length: 500 }, target)) writes.mark(one);
    await sleep(30);
    assert.equal(writes.window, 10);
  });

  it('when a huge number of streams is written, then the window stops at MAX_WINDOW_MS', async () => {
    const writes = new WriteBatcher(10, 1);
    for (const one of Array.from({ length: 50 }, target)) writes.mark(one);
    await sleep(30);
    assert.equal(writes.window, MAX_WINDOW_MS);
  });
});

describe('SSE write batching: long flushes', () => {
  it('when many streams are written at once, then the process reads its sockets between slices of them', async () => {
    const writes = new WriteBatcher(0);
    let flushed = 0;
    let seenBetween: number | undefined;
    const targets = Array.from({ length: FLUSH_SLICE * 3 }, (_, index) => ({
      flush: () => {
        flushed++;
        // What a socket read would run: the next turn of the event loop.
        if (index === 0) setImmediate(() => (seenBetween = flushed));
      },
    }));
    for (const each of targets) writes.mark(each);
    await sleep(50);
    assert.equal(flushed, FLUSH_SLICE * 3, 'not every stream was written');
    assert.equal(seenBetween, FLUSH_SLICE, 'the event loop did not turn after the first slice');
  });
});
