import type { SearchHit } from './model.js';

/** A search result as clients read it (swagger.yml, SearchMessage). */
export interface SearchHitJson {
  text: string;
  chat_id: string;
  message_id: string;
  user_id: string;
  created_at: string;
  highlights: string[];
}

export function presentHit(hit: SearchHit): SearchHitJson {
  return {
    text: hit.text,
    chat_id: hit.chatId,
    message_id: hit.messageId,
    user_id: hit.memberId,
    created_at: hit.createdAt,
    highlights: hit.highlights,
  };
}

export function presentTaskStatus(task: { status: string; error?: string; total?: number }) {
  const { status, error, total } = task;
  return status === 'FAILED' ? { status, error } : status === 'SUCCESS' ? { status, total } : { status };
}
