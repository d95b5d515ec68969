/**
 * A terminal client of the API, to see the product work from two terminals:
 *
 *   npm run client -- --url http://localhost:8080 --user alice [--password secret]
 *
 * Registers the user (or logs in), follows the events of the user's chats (Server-Sent Events,
 * resumed with Last-Event-ID after a drop) and reads commands; any other line is sent to the current
 * chat. A development tool run with tsx: it is not part of the production image.
 */
import readline from 'node:readline';
import { parseArgs } from 'node:util';

const HELP = `commands:
  /new <name>      create a chat and join it (it becomes the current chat)
  /join <chat_id>  join a chat by id (it becomes the current chat)
  /chats           the chats you joined here, and which one is current (/use <n> to switch)
  /history         the last messages of the current chat
  /search <words>  search your chats
  /quit            leave
anything else is sent to the current chat`;

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:8080' },
    user: { type: 'string' },
    password: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help || !values.user) {
  console.log('usage: npm run client -- --url http://localhost:8080 --user alice [--password secret]');
  console.log(HELP);
  process.exit(values.help ? 0 : 2);
}
const base = values.url.replace(/\/$/, '');
const userName = values.user;
// A development default: the same name always gets the same password, so a second run logs in.
const password = values.password ?? process.env.CLIENT_PASSWORD ?? `${userName}-dev-password`;

interface Chat {
  chatId: string;
  name: string;
  memberId: string;
}

const chats: Chat[] = [];
let current: Chat | undefined;
let session = '';
const state: { closing: boolean } = { closing: false };
const isClosing = (): boolean => state.closing;

const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: false });

function print(line: string): void {
  console.log(line);
}

type Json = Record<string, unknown>;
const text = (json: Json | undefined, key: string): string => {
  const value = json?.[key];
  return typeof value === 'string' ? value : '';
};

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json?: Json }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(session ? { Authorization: `Bearer ${session}` } : {}),
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const raw = await res.text();
  try {
    return { status: res.status, json: raw ? (JSON.parse(raw) as Json) : undefined };
  } catch {
    return { status: res.status };
  }
}

async function logIn(): Promise<void> {
  let login = await call('POST', '/v1/auth/login', { user_name: userName, password });
  if (login.status === 401) {
    const register = await call('POST', '/v1/auth/register', { user_name: userName, password });
    if (register.status !== 201)
      throw new Error(`register failed: ${register.status} ${JSON.stringify(register.json)}`);
    login = await call('POST', '/v1/auth/login', { user_name: userName, password });
  }
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${JSON.stringify(login.json)}`);
  session = text(login.json, 'session_id');
}

const chatName = (chatId: string) => chats.find((chat) => chat.chatId === chatId)?.name ?? chatId.slice(0, 8);

function show(type: string, data: Json): void {
  const mine = chats.some((chat) => chat.memberId === data.user_id);
  const where = `[${chatName(text(data, 'chat_id'))}] ${text(data, 'user_name')}`;
  if (type === 'message' && !mine) print(`${where}: ${text(data, 'text')}`);
  else if (type === 'member' && !mine) print(`${where} ${text(data, 'action')}`);
  else if (type === 'typing' && !mine) print(`${where} is typing...`);
  else if (type === 'reset') print('(missed too much while away: /history shows the latest)');
}

/** Follows the event stream for as long as the client runs, resuming after drops. */
async function follow(): Promise<void> {
  let lastId: string | undefined;
  while (!state.closing) {
    try {
      const res = await fetch(`${base}/v1/events`, {
        headers: {
          Accept: 'text/event-stream',
          Authorization: `Bearer ${session}`,
          ...(lastId ? { 'Last-Event-ID': lastId } : {}),
        },
      });
      if (res.status !== 200 || !res.body) throw new Error(`events: ${res.status}`);
      print('(connected to events)');
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) lastId = line.slice(4);
          }
          if (data) show(type, JSON.parse(data) as Json);
        }
      }
    } catch (error) {
      if (isClosing()) return;
      print(`(events: ${(error as Error).message}; reconnecting)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function joinChat(chatId: string, name: string): Promise<void> {
  const res = await call('POST', `/v1/chats/${chatId}/users`, { user_name: userName });
  if (res.status !== 201) {
    print(`join failed: ${res.status} ${text(res.json, 'message')}`);
    return;
  }
  current = { chatId, name, memberId: text(res.json, 'user_id') };
  if (!chats.some((chat) => chat.chatId === chatId)) chats.push(current);
  print(`(in chat ${name}: ${chatId})`);
}

async function command(line: string): Promise<void> {
  const [name = '', ...rest] = line.trim().split(/\s+/);
  const argument = rest.join(' ');
  switch (name) {
    case '/help': {
      print(HELP);
      return;
    }
    case '/quit':
      state.closing = true;
      rl.close();
      return;
    case '/new': {
      const res = await call('POST', '/v1/chats', { chat_name: argument || `${userName}'s chat` });
      if (res.status !== 201) {
        print(`create failed: ${res.status} ${text(res.json, 'message')}`);
        return;
      }
      return joinChat(text(res.json, 'chat_id'), argument || `${userName}'s chat`);
    }
    case '/join':
      return joinChat(argument, argument.slice(0, 8));
    case '/use': {
      const chat = chats[Number(argument) - 1];
      if (!chat) {
        print('no such chat: see /chats');
        return;
      }
      current = chat;
      print(`(in chat ${chat.name})`);
      return;
    }
    case '/chats':
      if (chats.length === 0) {
        print('no chats yet: /new <name> or /join <chat_id>');
        return;
      }
      chats.forEach((chat, index) =>
        print(`${chat === current ? '*' : ' '} ${index + 1}. ${chat.name}  ${chat.chatId}`),
      );
      return;
    case '/history': {
      if (!current) {
        print('no current chat: /new <name> or /join <chat_id>');
        return;
      }
      const shown: { user_name: string; text: string }[] = [];
      let from: string | undefined;
      do {
        const res = await call(
          'GET',
          `/v1/chats/${current.chatId}/messages?limit=1000${from ? `&from=${from}` : ''}`,
        );
        if (res.status !== 200) {
          print(`history failed: ${res.status}`);
          return;
        }
        shown.push(...((res.json?.messages ?? []) as typeof shown));
        from = text(res.json?.next as Json | undefined, 'iterator') || undefined;
      } while (from);
      for (const message of shown.slice(-20)) print(`  ${message.user_name}: ${message.text}`);
      return;
    }
    case '/search': {
      const created = await call('POST', '/v1/chats/search', { message: argument });
      if (created.status !== 201) {
        print(`search failed: ${created.status} ${text(created.json, 'message')}`);
        return;
      }
      const taskId = text(created.json, 'task_id');
      // Long polls: each answers as soon as the task finishes, or after 10 s.
      for (let attempt = 0; attempt < 3; attempt++) {
        const status = await call('GET', `/v1/chats/search/status/${taskId}?wait=10`);
        if (text(status.json, 'status') === 'SUCCESS') break;
        if (text(status.json, 'status') === 'FAILED') {
          print(`search failed: ${text(status.json, 'error')}`);
          return;
        }
      }
      const page = await call('GET', `/v1/chats/search/${taskId}/messages?limit=20`);
      if (page.status !== 200) {
        print(`search failed: ${page.status}`);
        return;
      }
      const hits = (page.json?.messages ?? []) as { chat_id: string; text: string }[];
      if (hits.length === 0) {
        print('(no matches)');
        return;
      }
      for (const hit of hits) print(`  [${chatName(hit.chat_id)}] ${hit.text}`);
      return;
    }
    default:
      if (name.startsWith('/')) {
        print(`unknown command ${name}: /help`);
        return;
      }
      if (!current) {
        print('no current chat: /new <name> or /join <chat_id>');
        return;
      }
      {
        const res = await call('POST', `/v1/chats/${current.chatId}/messages?user_id=${current.memberId}`, {
          message: line,
        });
        if (res.status !== 201) print(`send failed: ${res.status} ${text(res.json, 'message')}`);
      }
  }
}

async function main(): Promise<void> {
  await logIn();
  print(`(logged in as ${userName}; /help for commands)`);
  void follow();
  // One line at a time, in order: a send finishes before the next command runs.
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    if (!line.trim()) return;
    queue = queue
      .then(() => command(line))
      .catch((error: unknown) => print(`error: ${(error as Error).message}`));
  });
  rl.on('close', () => {
    state.closing = true;
    void queue.then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
