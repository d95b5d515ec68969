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
const HEADER_BYTES = 5;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidOf(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Writes `value` as a varint (7 bits a byte, low first) at `offset`; returns its length. */
function writeVarint(value: number, target: Buffer, offset: number): number {
  let rest = value;
  let at = offset;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 128;
    target[at++] = byte;
  } while (rest > 0);
  return at - offset;
}

function varintLength(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 128; rest = Math.floor(rest / 128)) length++;
  return length;
}

export function encodePosition(position: Position): string {
  const positions = new Positions();
  for (const [chatId, seq] of position.chats) positions.set(chatId, seq);
  return positions.encode(position.at);
}

/**
 * A stream's positions as it moves: a map of chat → number of the last event delivered, which keeps
 * its encoding up to date as it changes. Moving one chat forward rewrites that chat's number in place
 * (rebuilding only when the number's length changes or a chat comes or goes), so writing the id of
 * each event costs one base64 pass instead of encoding every chat again.
 */
export class Positions {
  private readonly seqs = new Map<string, number>();
  private readonly offsets = new Map<string, number>();
  private bytes: Buffer | undefined;

  get size(): number {
    return this.seqs.size;
  }
  get(chatId: string): number | undefined {
    return this.seqs.get(chatId);
  }
  has(chatId: string): boolean {
    return this.seqs.has(chatId);
  }
  keys(): IterableIterator<string> {
    return this.seqs.keys();
  }
  entries(): IterableIterator<[string, number]> {
    return this.seqs.entries();
  }
  /** A copy, as a plain map. */
  toMap(): Map<string, number> {
    return new Map(this.seqs);
  }

  set(chatId: string, seq: number): void {
    const before = this.seqs.get(chatId);
    this.seqs.set(chatId, seq);
    const offset = this.offsets.get(chatId);
    if (
      this.bytes &&
      offset !== undefined &&
      before !== undefined &&
      varintLength(before) === varintLength(seq)
    ) {
      writeVarint(seq, this.bytes, offset);
      return;
    }
    this.bytes = undefined;
  }

  delete(chatId: string): void {
    if (this.seqs.delete(chatId)) this.bytes = undefined;
  }

  /** The position as clients get it, written at `at` (seconds since the epoch). */
  encode(at: number): string {
    const bytes = this.bytes ?? this.build();
    bytes.writeUInt32BE(Math.floor(at) >>> 0, 1);
    return bytes.toString('base64url');
  }

  private build(): Buffer {
    let size = HEADER_BYTES;
    for (const seq of this.seqs.values()) size += 16 + varintLength(seq);
    const bytes = Buffer.alloc(size);
    bytes[0] = VERSION;
    let offset = HEADER_BYTES;
    this.offsets.clear();
    for (const [chatId, seq] of this.seqs) {
      offset += uuidBytes(chatId).copy(bytes, offset);
      this.offsets.set(chatId, offset);
      offset += writeVarint(seq, bytes, offset);
    }
    this.bytes = bytes;
    return bytes;
  }
}

/** The position of `text`, or 400 `bad-cursor` when it is not one this server wrote. */
export function decodePosition(text: string): Position {
  if (!/^[A-Za-z0-9_-]{7,}$/.test(text)) throw badCursor();
  const bytes = Buffer.from(text, 'base64url');
  if (bytes[0] !== VERSION || bytes.length < HEADER_BYTES) throw badCursor();
  const at = bytes.readUInt32BE(1);
  const chats = new Map<string, number>();
  let offset = HEADER_BYTES;
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
