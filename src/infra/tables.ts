/** Row types of the tables, so knex query builders return typed rows. */
export interface UserRow {
  id: string;
  name: string;
  password_hash: string;
  created_at: Date;
}

export interface SessionRow {
  token_hash: string;
  user_id: string;
  created_at: Date;
  expires_at: Date;
}

export interface ChatRow {
  id: string;
  name: string;
  created_by: string | null;
  created_at: Date;
}

export interface MemberRow {
  id: string;
  chat_id: string;
  user_id: string | null;
  name: string;
  created_at: Date;
}

declare module 'knex/types/tables.js' {
  interface Tables {
    users: UserRow;
    sessions: SessionRow;
    chats: ChatRow;
    members: MemberRow;
  }
}
