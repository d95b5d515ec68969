/**
 * What one client can make the history cache hold: bytes kept per request when every request asks
 * for a different page shape (limit 1..1000 and hand-made cursors), against the bytes a reader
 * following the server's own cursors makes it keep. Runs the app in-process on the current profile
 * (DATABASE_URL / REDIS_URL as for the tests; embedded without them).
 *
 *   npx tsx bench/cache-bytes.ts            # or with DATABASE_URL=… REDIS_URL=…
 */
import type { CacheModule } from '../src/modules/cache/index.js';
import { startApp } from '../test/support/app.js';
import { createChat, join, registerAndLogin, send } from '../test/support/fixtures.js';

const MESSAGES = 60;
const REQUESTS = 200;

const app = await startApp({ LOG_LEVEL: 'silent' }, { consumer: false });
try {
  const cache = app.service.modules.find((module) => module.name === 'cache') as CacheModule;
  const user = await registerAndLogin(app.api);
  const chatId = await createChat(app.api, user);
  const memberId = await join(app.api, user, chatId);
  for (let i = 0; i < MESSAGES; i++)
    await send(app.api, user, chatId, memberId, `message ${i} `.padEnd(200, 'x'));
  const history = (query: string) =>
    app.api.get(`/v1/chats/${chatId}/messages?${query}`).set(user.auth).expect(200);
  const held = () => cache.held(`history:pages:{${chatId}}`);

  // A reader walking the history with limit 10, twice.
  for (let pass = 0; pass < 2; pass++) {
    let query = 'limit=10';
    for (;;) {
      const { next } = (await history(query)).body as { next?: { iterator: string } };
      if (!next) break;
      query = `limit=10&from=${encodeURIComponent(next.iterator)}`;
    }
  }
  const walked = await held();

  // A client asking for a different shape each time, in two rounds of fresh shapes.
  const rounds: string[] = [];
  let before = walked;
  for (let round = 0; round < 2; round++) {
    for (let n = 0; n < REQUESTS; n++) {
      const i = round * REQUESTS + n;
      const limit = 1 + ((i * 7) % 1000);
      const cursor = Buffer.from(`h1:${i}`).toString('base64url');
      await history(i % 2 ? `limit=${limit}` : `limit=${limit}&from=${cursor}`);
    }
    const now = await held();
    const added = now.bytes - before.bytes;
    rounds.push(`+${now.keys - before.keys} pages, +${added} B (${(added / REQUESTS).toFixed(0)} B/request)`);
    before = now;
  }
  console.log(
    `${app.service.db.kind}, cache ${process.env.REDIS_URL ? 'redis' : 'memory'}: walking ${MESSAGES} messages ` +
      `by 10 keeps ${walked.keys} pages, ${walked.bytes} B; ${REQUESTS} requests of distinct shapes, twice: ` +
      rounds.join('; then '),
  );
} finally {
  await app.close();
}
