import { badCursor } from '../../errors.js';

/**
 * A stream position: for each chat, the number of the last event delivered, plus when the position
 * was written (to tell a gap too old to replay). Encoded compactly (16 bytes of chat id and a varint
 * per chat) as base64url: opaque to clients, the `id` of every durable event and `last_event_id`.
 *
 * A user may be in thousands of chats, and an id must fit in a header (Last-Event-ID) or a URL, so
 * an id lists only the chats active lately (version 2): a chat with no event for a while (two
 * minutes by default) before `at` is left out, and stands for "every event of it created before then, and none after".
 * A resume reads where such a chat stood from the database (events.created_at, see
 * EventsRepository.quietStarts). Version 1 ids (every chat listed) are still read.
 */
export interface Position {
  /** Seconds since the epoch. */
  at: number;
  chats: Map<string, number>;
  /** Every chat of the user is listed (version 1); otherwise the unlisted ones were quiet at `at`. */
  complete: boolean;
}

/**
 * A chat with no event for `quietSeconds` before a position is written is left out of it. Its last
 * event was created at least that long before `at`, and every event after it is created (its
 * transaction started) after `at` minus the longest a write transaction lasts: a resume finds where
 * it stood as the last event created before `at - cut`, in between (quiet = 2 × cut, and cut is
 * longer than any write transaction: see quietTimes).
 */
export const QUIET_SECONDS = 120;

/** The quiet time and the resume cut for writes bounded by `writeBoundMs` (database timeouts). */
export function quietTimes(writeBoundMs: number): { quietSeconds: number; cutSeconds: number } {
  const cutSeconds = Math.max(QUIET_SECONDS / 2, Math.ceil((2 * writeBoundMs) / 1000));
  return { quietSeconds: 2 * cutSeconds, cutSeconds };
}

/** A position left unchanged this long is rebuilt (dropping chats that went quiet meanwhile). */
const REBUILD_SECONDS = 60;

const VERSION = 2;
const VERSION_COMPLETE = 1;
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

/** Every chat of `position` listed (as active at `at`), in a version 2 id. */
export function encodePosition(position: Pick<Position, 'at' | 'chats'>): string {
  const positions = new Positions();
  for (const [chatId, seq] of position.chats) positions.set(chatId, seq, position.at);
  return positions.encode(position.at);
}

/**
 * A stream's positions as it moves: a map of chat → number of the last event delivered, which keeps
 * its encoding up to date as it changes. Moving one chat forward rewrites that chat's number in place
 * (rebuilding only when the number's length changes or a chat comes, goes or becomes active), so
 * writing the id of each event costs one base64 pass instead of encoding every chat again. Each chat
 * also has the time it was last active (seconds): its last event's creation, or when this stream last
 * heard of one; quiet chats are left out of the id.
 */
interface Entry {
  seq: number;
  /** Seconds since the epoch. */
  activeAt: number;
  /** Where its number is in the encoded id, when the id lists it. */
  offset: number | undefined;
}

/** Seconds since the epoch. */
const nowSeconds = () => Date.now() / 1000;

export class Positions {
  private readonly chats = new Map<string, Entry>();

  constructor(private readonly quietSeconds = QUIET_SECONDS) {}

  private bytes: Buffer | undefined;
  private builtAt = 0;
  private builtComplete = false;

  get size(): number {
    return this.chats.size;
  }
  get(chatId: string): number | undefined {
    return this.chats.get(chatId)?.seq;
  }
  has(chatId: string): boolean {
    return this.chats.has(chatId);
  }
  *keys(): IterableIterator<string> {
    yield* this.chats.keys();
  }
  *entries(): IterableIterator<[string, number]> {
    for (const [chatId, entry] of this.chats) yield [chatId, entry.seq];
  }
  /** A copy, as a plain map. */
  toMap(): Map<string, number> {
    return new Map(this.entries());
  }

  /**
   * Moves the chat to `seq`. `activeAt` (seconds) is when the chat last had an event, when older
   * than now (read from the database); by default the chat is active now.
   */
  set(chatId: string, seq: number, activeAt?: number): void {
    const entry = this.chats.get(chatId);
    if (!entry) {
      const at = activeAt ?? nowSeconds();
      this.chats.set(chatId, { seq, activeAt: at, offset: undefined });
      // A new chat, listed unless it is quiet: the id changes.
      if (this.builtComplete || at > this.builtAt - this.quietSeconds) this.bytes = undefined;
      return;
    }
    const before = entry.seq;
    entry.seq = seq;
    entry.activeAt = activeAt === undefined ? nowSeconds() : Math.max(activeAt, entry.activeAt);
    if (!this.bytes) return;
    if (entry.offset !== undefined) {
      if (varintLength(before) === varintLength(seq)) writeVarint(seq, this.bytes, entry.offset);
      else this.bytes = undefined;
      return;
    }
    // Unlisted: the id changes only if the chat is listed now.
    if (this.builtComplete || entry.activeAt > this.builtAt - this.quietSeconds) this.bytes = undefined;
  }

  /**
   * This stream heard of an event of the chat it has not delivered yet (it is queued, or missing
   * events before it are read first): the chat is active, listed in ids meanwhile.
   */
  touch(chatId: string): void {
    const entry = this.chats.get(chatId);
    if (!entry) return;
    entry.activeAt = nowSeconds();
    if (this.bytes && entry.offset === undefined) this.bytes = undefined;
  }

  delete(chatId: string): void {
    if (this.chats.delete(chatId)) this.bytes = undefined;
  }

  /**
   * The position as clients get it, written at `at` (seconds since the epoch). `complete` lists every
   * chat, quiet or not: for when this stream may have missed events it does not know of yet.
   */
  encode(at: number, complete = false): string {
    if (this.bytes && (complete !== this.builtComplete || at - this.builtAt > REBUILD_SECONDS)) {
      this.bytes = undefined;
    }
    const bytes = this.bytes ?? this.build(at, complete);
    bytes.writeUInt32BE(Math.floor(at) >>> 0, 1);
    return bytes.toString('base64url');
  }

  private build(at: number, complete: boolean): Buffer {
    const listed: [string, Entry][] = [];
    let size = HEADER_BYTES;
    for (const [chatId, entry] of this.chats) {
      entry.offset = undefined;
      if (!complete && entry.activeAt <= at - this.quietSeconds) continue;
      listed.push([chatId, entry]);
      size += 16 + varintLength(entry.seq);
    }
    const bytes = Buffer.alloc(size);
    bytes[0] = VERSION;
    let offset = HEADER_BYTES;
    for (const [chatId, entry] of listed) {
      offset += uuidBytes(chatId).copy(bytes, offset);
      entry.offset = offset;
      offset += writeVarint(entry.seq, bytes, offset);
    }
    this.bytes = bytes;
    this.builtAt = at;
    this.builtComplete = complete;
    return bytes;
  }
}

/** The position of `text`, or 400 `bad-cursor` when it is not one this server wrote. */
export function decodePosition(text: string): Position {
  if (!/^[A-Za-z0-9_-]{7,}$/.test(text)) throw badCursor();
  const bytes = Buffer.from(text, 'base64url');
  if ((bytes[0] !== VERSION && bytes[0] !== VERSION_COMPLETE) || bytes.length < HEADER_BYTES)
    throw badCursor();
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
  return { at, chats, complete: bytes[0] === VERSION_COMPLETE };
}
