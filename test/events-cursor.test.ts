import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodePosition, encodePosition, Positions } from '../src/modules/events/cursor.js';

describe('stream positions (event ids)', () => {
  it('when a position is encoded, then it keeps the format ids were always written in (version, seconds, chat id and varint per chat)', () => {
    const chats = new Map([['00000000-0000-0000-0000-000000000001', 300]]);
    assert.equal(encodePosition({ at: 1, chats }), 'AQAAAAEAAAAAAAAAAAAAAAAAAAABrAI');
  });

  it('when a position moves chat by chat, then its id is the one a fresh encoding of the same position gives, and decodes back to it', () => {
    const chats = new Map<string, number>();
    const positions = new Positions();
    const at = 1_800_000_000;
    // Numbers across the varint lengths (1 to 5 bytes), each moved past a length boundary too.
    for (const seq of [0, 127, 16_383, 2_097_151, 268_435_455]) {
      const chatId = randomUUID();
      chats.set(chatId, seq);
      positions.set(chatId, seq);
    }
    for (let step = 0; step < 400; step++) {
      const ids = [...chats.keys()];
      const chatId = ids[step % ids.length]!;
      const seq = chats.get(chatId)! + (step % 7);
      chats.set(chatId, seq);
      positions.set(chatId, seq);
      if (step % 50 === 49) {
        chats.delete(chatId);
        positions.delete(chatId);
        const joined = randomUUID();
        chats.set(joined, step);
        positions.set(joined, step);
      }
      const id = positions.encode(at + step);
      assert.equal(id, encodePosition({ at: at + step, chats }));
      assert.deepEqual(decodePosition(id), { at: at + step, chats });
    }
  });
});
