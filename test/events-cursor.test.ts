import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodePosition, encodePosition, Positions, QUIET_SECONDS } from '../src/modules/events/cursor.js';

describe('stream positions (event ids)', () => {
  it('when a position is encoded, then it keeps its format (version 2, seconds, chat id and varint per chat); version 1 ids still decode', () => {
    const chats = new Map([['00000000-0000-0000-0000-000000000001', 300]]);
    assert.equal(encodePosition({ at: 1, chats }), 'AgAAAAEAAAAAAAAAAAAAAAAAAAABrAI');
    assert.deepEqual(decodePosition('AQAAAAEAAAAAAAAAAAAAAAAAAAABrAI'), { at: 1, chats, complete: true });
    assert.deepEqual(decodePosition('AgAAAAEAAAAAAAAAAAAAAAAAAAABrAI'), { at: 1, chats, complete: false });
  });

  it('when a user is in many chats, then an id lists only those active lately; all of them while the stream may be missing events', () => {
    const now = Date.now() / 1000;
    const positions = new Positions();
    const quiet = Array.from({ length: 1000 }, () => randomUUID());
    // Last active a day ago (from the database) or 5 minutes past the quiet limit.
    quiet.forEach((chatId, i) =>
      positions.set(chatId, 1000 + i, i % 2 ? now - 86_400 : now - QUIET_SECONDS - 300),
    );
    const active = randomUUID();
    positions.set(active, 7);
    const id = positions.encode(now);
    assert.deepEqual(decodePosition(id), {
      at: Math.floor(now),
      chats: new Map([[active, 7]]),
      complete: false,
    });
    assert.ok(id.length < 40, `id of ${id.length} characters`);
    // A quiet chat that gets an event (heard of, or delivered) is listed again at once.
    positions.touch(quiet[0]!);
    assert.deepEqual(
      [...decodePosition(positions.encode(now)).chats.keys()].sort(),
      [active, quiet[0]!].sort(),
    );
    positions.set(quiet[1]!, 2000);
    assert.equal(decodePosition(positions.encode(now)).chats.get(quiet[1]!), 2000);
    // Complete: every chat, whatever its activity.
    assert.equal(decodePosition(positions.encode(now, true)).chats.size, 1001);
    // Chats go quiet: a position written later (after a rebuild) leaves them out again.
    const later = now + QUIET_SECONDS + 120;
    assert.equal(decodePosition(positions.encode(later)).chats.size, 0);
  });

  it('when a position moves chat by chat, then its id is the one a fresh encoding of the same position gives, and decodes back to it', () => {
    const chats = new Map<string, number>();
    const positions = new Positions();
    const at = Math.floor(Date.now() / 1000);
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
      const id = positions.encode(at + (step % 60));
      assert.equal(id, encodePosition({ at: at + (step % 60), chats }));
      assert.deepEqual(decodePosition(id), { at: at + (step % 60), chats, complete: false });
    }
  });
});
