import { badCursor } from '../../errors.js';

/** Search result cursors: base64url of a versioned offset into the task's stored, ordered results. */
const PREFIX = 's1:';

export function encodeCursor(offset: number): string {
  return Buffer.from(PREFIX + String(offset)).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const decoded = /^[\w-]{1,32}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  const offset = decoded.startsWith(PREFIX) ? decoded.slice(PREFIX.length) : '';
  if (!/^\d{1,9}$/.test(offset)) throw badCursor();
  return Number(offset);
}
