import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectRoot } from '../src/infra/paths.js';
import { profile } from './support/profile.js';
import { Broker, freshQueueName } from './support/search-helpers.js';
import { killLeftovers, launch, spawnApi, type Launched, type SpawnedApi } from './support/spawn.js';

const run = promisify(execFile);
const SCRIPT = 'scripts/readme-walkthrough.sh';

/** The README's walk-through runner, as a user runs it; failures carry its output. */
async function walkthrough(args: string[], env: Record<string, string> = {}) {
  try {
    return await run('bash', [SCRIPT, ...args], {
      cwd: projectRoot(),
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${SCRIPT} failed:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: error });
  }
}

describe('README walk-through', function () {
  this.timeout(90_000);
  const queue = freshQueueName();
  let app: SpawnedApi | undefined;
  let consumer: Launched | undefined;

  before(async () => {
    // The same process `make dev` runs; with a broker, searches need a consumer as in production.
    const started = await spawnApi({ SEARCH_QUEUE: queue });
    app = started;
    // Until the schema is in place /v1 answers 503 by design; a user reads the log line first too.
    await started.waitForLog(
      (line) => line.msg === 'database migrated' || line.msg === 'database schema up to date',
      30_000,
    );
    if (profile.env.AMQP_URL) {
      consumer = launch({ SEARCH_QUEUE: queue }, 'consumer');
      await consumer.waitForLog((line) => line.msg === 'consumer started', 45_000);
    }
  });

  after(async () => {
    await consumer?.stop();
    await app?.stop();
    await killLeftovers();
    if (profile.env.AMQP_URL) await Broker.deleteQueues(profile.env.AMQP_URL, [queue]);
  });

  it('when the walk-through is extracted, then it covers the whole session in order and every call fails loudly', async () => {
    const { stdout: script } = await walkthrough(['--print']);
    const steps = [
      '/v1/auth/register',
      '/v1/auth/login',
      '/v1/chats -H',
      '/v1/chats/$CHAT/users',
      '/v1/chats/$CHAT/messages?user_id=',
      '/v1/chats/$CHAT/messages?limit=2&from=',
      '/v1/chats/search -H',
      '/v1/chats/search/status/',
      '/v1/chats/search/$TASK/messages',
      '/v1/auth/logout',
    ];
    let at = -1;
    for (const step of steps) {
      const found = script.indexOf(step, at + 1);
      assert.ok(found > at, `the walk-through calls ${step} after the previous step`);
      at = found;
    }
    const calls = script.split('\n').filter((line) => /\bcurl\b/.test(line));
    // Only the last call, which shows the 401 after logout, may let an error status through.
    for (const line of calls.slice(0, -1)) assert.match(line, /curl -fsS /, line);
    assert.match(calls.at(-1)!, /%\{http_code\}/);
  });

  it('when the walk-through runs top to bottom against a fresh API, then every step succeeds and the session ends logged out', async () => {
    const { stdout } = await walkthrough([], { API: app!.url });
    const lines = stdout.trim().split('\n');
    assert.ok(lines.includes('{"status":"SUCCESS","total":1}'), stdout);
    assert.ok(lines.includes('{"status":"ok"}'), stdout);
    assert.equal(lines.at(-1), '401', stdout);
    const hits = lines.find((line) => line.includes('"highlights"'));
    assert.ok(hits?.includes('<mark>Hello</mark>, world'), stdout);
  });

  it('when a step fails, then the walk-through stops there with the HTTP error instead of going on', async () => {
    // A wrong base address: the first call answers 404.
    await assert.rejects(walkthrough([], { API: `${app!.url}/no-such-prefix` }), (error: Error) => {
      assert.match(error.message, /returned error: 404/);
      assert.doesNotMatch(error.message, /"user_id"|SUCCESS/);
      return true;
    });
  });
});
