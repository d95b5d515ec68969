import type { Knex } from '../../infra/db.js';
import type { DurableKind, StoredEvent } from './model.js';

/**
 * Numbers and stores a durable event of a chat inside the caller's transaction (`trx`), for changes
 * made in several statements (leaving a chat, a read mark): the chat row stays locked until commit,
 * so the chat's events keep their commit order. After the commit, hand the result to
 * `EventPublisher.published`. Undefined when the chat does not exist.
 *
 * `userId` is the account the event is about for member events (its streams stop following the
 * chat on `left`); `data` is the event as clients get it (asyncapi.yml), `chat_id` included.
 */
export async function appendEvent(
  trx: Knex.Transaction,
  event: { chatId: string; kind: DurableKind; userId?: string | null; data: Record<string, unknown> },
): Promise<StoredEvent | undefined> {
  const { rows } = await trx.raw<{ rows: { seq: string }[] }>(
    `WITH chat AS (UPDATE chats SET event_seq = event_seq + 1 WHERE id = ? RETURNING id, event_seq)
     INSERT INTO events (chat_id, seq, kind, user_id, payload)
     SELECT chat.id, chat.event_seq, ?, ?::uuid, ?::jsonb FROM chat
     RETURNING seq`,
    [event.chatId, event.kind, event.userId ?? null, JSON.stringify(event.data)],
  );
  const row = rows[0];
  return row && { ...event, seq: Number(row.seq) };
}
