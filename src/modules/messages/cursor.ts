import { badCursor } from '../../errors.js';

/**
 * History cursors are opaque to clients: base64url of a versioned position. Anything that does not
 * decode to one is 400 `bad-cursor`.
 */
const PREFIX = 'h1:';
const POSITION = /^\d{1,19}$/;

export function encodeCursor(seq: string): string {
  return Buffer.from(PREFIX + seq).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const decoded = /^[\w-]{1,64}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  const seq = decoded.startsWith(PREFIX) ? decoded.slice(PREFIX.length) : '';
  if (!POSITION.test(seq) || BigInt(seq) > 9_223_372_036_854_775_807n) throw badCursor();
  return seq;
}
