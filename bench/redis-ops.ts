/**
 * Redis commands per request, by request kind: the app in-process on REDIS_URL (a throwaway Redis:
 * INFO commandstats counts every client's commands) and DATABASE_URL, N requests of each kind, the
 * commandstats delta divided by N. Usage (SCALING.md): REDIS_URL=redis://127.0.0.1:7010
 * DATABASE_URL=postgres://... npx tsx bench/redis-ops.ts [N]
 */
import { Redis } from 'ioredis';
import supertest from 'supertest';
import { createService } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/infra/logger.js';

const N = Number(process.argv[2] ?? 200);

async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const stats = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1]!, Number(match[2]));
  return stats;
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL!;
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'silent',
    BCRYPT_COST: '4',
    RATE_LIMIT_MAX: '10000000',
    SEND_RATE_LIMIT_MAX: '10000000',
    LOGIN_RATE_LIMIT_MAX: '10000000',
  });
  const service = await createService(config, createLogger('silent'));
  await service.migrated;
  const api = supertest(service.app.callback());
  const redis = new Redis(redisUrl);
  const name = `ops-${Date.now()}`;
  await api
    .post('/v1/auth/register')
    .send({ user_name: name, password: 'correct horse battery' })
    .expect(201);
  const login = await api.post('/v1/auth/login').send({ user_name: name, password: 'correct horse battery' });
  const auth = { Authorization: `session_id ${(login.body as { session_id: string }).session_id}` };
  const chat = await api.post('/v1/chats').set(auth).send({ chat_name: 'ops' }).expect(201);
  const chatId = (chat.body as { chat_id: string }).chat_id;
  const member = await api.post(`/v1/chats/${chatId}/users`).set(auth).send({ user_name: name }).expect(201);
  const memberId = (member.body as { user_id: string }).user_id;
  const send = () =>
    api
      .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
      .set(auth)
      .send({ message: 'hello there' })
      .expect(201);
  const page = () => api.get(`/v1/chats/${chatId}/messages?limit=50`).set(auth).expect(200);
  const chatList = () => api.get('/v1/chats?limit=20').set(auth).expect(200);
  await send();
  await page();
  await chatList();

  const kinds: [string, () => Promise<unknown>][] = [
    ['GET /ping', () => api.get('/ping').expect(200)],
    ['history page, cached (HIT)', page],
    ['chat list, cached (HIT)', chatList],
    ['send message', send],
    [
      'history page after a send (MISS)',
      async () => {
        await send();
        await page();
      },
    ],
    [
      'login',
      () =>
        api.post('/v1/auth/login').send({ user_name: name, password: 'correct horse battery' }).expect(200),
    ],
  ];
  const rows: string[] = [];
  let previousSend = 0;
  for (const [kind, request] of kinds) {
    const before = await commandStats(redis);
    for (let i = 0; i < N; i++) await request();
    const after = await commandStats(redis);
    const delta = [...after].map(
      ([command, calls]) => [command, calls - (before.get(command) ?? 0)] as const,
    );
    // INFO itself is one command on each side of the window.
    const total =
      delta.reduce((sum, [command, calls]) => sum + (command === 'info' ? calls - 1 : calls), 0) / N;
    const detail = delta
      .filter(([command, calls]) => calls > 0 && command !== 'info')
      .map(([command, calls]) => `${command} ${(calls / N).toFixed(2)}`)
      .join(', ');
    if (kind === 'send message') previousSend = total;
    const shown = kind.startsWith('history page after')
      ? `${total.toFixed(2)} (send + page; page alone ≈ ${(total - previousSend).toFixed(2)})`
      : total.toFixed(2);
    rows.push(`| ${kind} | ${shown} | ${detail} |`);
  }
  process.stdout.write(
    `N = ${N} per kind\n| request | Redis commands / request | by command |\n|---|---:|---|\n${rows.join('\n')}\n`,
  );
  redis.disconnect();
  await service.close();
}

await main();
