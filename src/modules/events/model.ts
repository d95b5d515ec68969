/**
 * The real-time events (asyncapi.yml). Durable ones (message, member, read) are numbered per chat in
 * commit order and stored; ephemeral ones (typing, presence) only travel the bus.
 */
export type DurableKind = 'message' | 'member' | 'read';
export type EphemeralKind = 'typing' | 'presence';

/** `data` is the event's JSON as clients get it (asyncapi.yml); it always carries `chat_id`. */
export type ChatEvent = StoredEvent | EphemeralEvent;

export interface EphemeralEvent {
  kind: EphemeralKind;
  chatId: string;
  data: Record<string, unknown>;
}

/**
 * Typing or presence in several chats at once (a user in many chats coming online or going offline),
 * as one bus message where every instance hears every message: one publish instead of one per chat.
 */
export interface EphemeralBatch {
  kind: 'batch';
  events: EphemeralEvent[];
}

/** What travels the event bus between instances. */
export type BusMessage = ChatEvent | EphemeralBatch;

export const isEphemeral = (event: ChatEvent): event is EphemeralEvent =>
  event.kind === 'typing' || event.kind === 'presence';

/**
 * A committed durable event as the repositories return it. `userId` is the account a member event is
 * about (streams of that account start or stop following the chat).
 */
export interface StoredEvent {
  chatId: string;
  seq: number;
  kind: DurableKind;
  userId?: string | null;
  data: Record<string, unknown>;
}

/** What the chats and messages services call once a change has committed. */
export interface EventPublisher {
  published(event: StoredEvent): void;
}
