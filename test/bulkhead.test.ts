import assert from 'node:assert/strict';
import { Bulkhead, BulkheadFullError } from '../src/infra/bulkhead.js';

/** A task that runs until the test lets it finish. */
function gate(): { task: () => Promise<string>; open: (value: string) => void } {
  let open!: (value: string) => void;
  const done = new Promise<string>((resolve) => (open = resolve));
  return { task: () => done, open };
}

describe('the bulkhead (bounded concurrency)', () => {
  it('when its slots and queue are full, then a new task is refused at once and the waiting ones run in order', async () => {
    const bulkhead = new Bulkhead({ concurrency: 2, queueMax: 1, perKeyMax: 10 });
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      bulkhead.run(`client-${i}`, () => {
        started.push(i);
        return g.task();
      }),
    );
    assert.deepEqual(bulkhead.load, { running: 2, waiting: 1 });
    await assert.rejects(
      bulkhead.run('client-3', () => Promise.resolve('never')),
      BulkheadFullError,
    );
    assert.deepEqual(started, [0, 1]);
    gates[0]!.open('a');
    assert.equal(await runs[0], 'a');
    // The freed slot went to the waiting task, not to a newcomer.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [0, 1, 2]);
    assert.deepEqual(bulkhead.load, { running: 2, waiting: 0 });
    gates[1]!.open('b');
    gates[2]!.open('c');
    assert.deepEqual(await Promise.all(runs.slice(1)), ['b', 'c']);
    assert.deepEqual(bulkhead.load, { running: 0, waiting: 0 });
  });

  it('when one key holds its share, then it is refused while other keys still get in', async () => {
    const bulkhead = new Bulkhead({ concurrency: 1, queueMax: 10, perKeyMax: 2 });
    const gates = [gate(), gate(), gate()];
    const mine = [bulkhead.run('flood', gates[0]!.task), bulkhead.run('flood', gates[1]!.task)];
    await assert.rejects(
      bulkhead.run('flood', () => Promise.resolve('never')),
      BulkheadFullError,
    );
    const other = bulkhead.run('other', gates[2]!.task);
    assert.deepEqual(bulkhead.load, { running: 1, waiting: 2 });
    for (const [i, g] of gates.entries()) g.open(String(i));
    assert.deepEqual(await Promise.all([...mine, other]), ['0', '1', '2']);
    // Its places are back once its tasks are done.
    assert.equal(await bulkhead.run('flood', () => Promise.resolve('again')), 'again');
  });

  it('when a task fails, then its slot and its key’s place are given back', async () => {
    const bulkhead = new Bulkhead({ concurrency: 1, queueMax: 0, perKeyMax: 1 });
    await assert.rejects(
      bulkhead.run('k', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await bulkhead.run('k', () => Promise.resolve('ok')), 'ok');
    assert.deepEqual(bulkhead.load, { running: 0, waiting: 0 });
  });
});
