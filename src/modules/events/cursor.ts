import { badCursor } from '../../errors.js';

/**
 * A stream position: for each chat, the number of the last event delivered, plus when the position
 * was written (to tell a gap too old to replay). Encoded compactly (16 bytes of chat id and a varint
 * per chat) as base64url: opaque to clients, the `id` of every durable event and `last_event_id`.
 */
export interface Position {
  /** Seconds since the epoch. */
  at: number;
  chats: Map<string, number>;
}

const VERSION = 1;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidOf(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function encodePosition(position: Position): string {
  const parts: number[] = [VERSION];
  const at = Math.floor(position.at);
  parts.push((at >>> 24) & 255, (at >>> 16) & 255, (at >>> 8) & 255, at & 255);
  const chunks: Buffer[] = [Buffer.from(parts)];
  for (const [chatId, seq] of position.chats) {
    const varint: number[] = [];
    let rest = seq;
    do {
      let byte = rest % 128;
      rest = Math.floor(rest / 128);
      if (rest > 0) byte |= 128;
      varint.push(byte);
    } while (rest > 0);
    chunks.push(uuidBytes(chatId), Buffer.from(varint));
  }
  return Buffer.concat(chunks).toString('base64url');
}

/** The position of `text`, or 400 `bad-cursor` when it is not one this server wrote. */
export function decodePosition(text: string): Position {
  if (!/^[A-Za-z0-9_-]{7,}$/.test(text)) throw badCursor();
  const bytes = Buffer.from(text, 'base64url');
  if (bytes[0] !== VERSION || bytes.length < 5) throw badCursor();
  const at = bytes.readUInt32BE(1);
  const chats = new Map<string, number>();
  let offset = 5;
  while (offset < bytes.length) {
    if (offset + 17 > bytes.length) throw badCursor();
    const chatId = uuidOf(bytes.subarray(offset, offset + 16));
    offset += 16;
    let seq = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[offset++];
      if (byte === undefined || scale > 2 ** 49) throw badCursor();
      seq += (byte & 127) * scale;
      scale *= 128;
      if (byte < 128) break;
    }
    chats.set(chatId, seq);
  }
  return { at, chats };
}
