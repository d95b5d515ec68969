/**
 * `npm run seed -- [--users N] [--chats N] [--messages N] [--big-chat N] [--jobs N] [--force]`
 *
 * Fills the bench database (BENCH_DATABASE_URL, created when missing, migrated with the built
 * binary) with users, chats and Russian/English messages. Does nothing when the database already
 * holds at least that much seeded data, unless --force.
 */
import { parseArgs } from 'node:util';
import { BENCH_DATABASE_URL } from './lib/db.js';
import { DEFAULT_SEED, ensureSeeded, type SeedOptions } from './lib/seeding.js';

function count(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`--${name} must be a positive whole number`);
  return parsed;
}

function seedOptions(argv: string[]): SeedOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string' },
      chats: { type: 'string' },
      messages: { type: 'string' },
      'big-chat': { type: 'string' },
      jobs: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    users: count(values.users, 'users', DEFAULT_SEED.users),
    chats: count(values.chats, 'chats', DEFAULT_SEED.chats),
    messages: count(values.messages, 'messages', DEFAULT_SEED.messages),
    bigChat: count(values['big-chat'], 'big-chat', DEFAULT_SEED.bigChat),
    jobs: count(values.jobs, 'jobs', DEFAULT_SEED.jobs),
    batch: DEFAULT_SEED.batch,
    seed: count(values.seed, 'seed', DEFAULT_SEED.seed),
    force: values.force,
  };
}

async function main(): Promise<void> {
  const options = seedOptions(process.argv.slice(2));
  const { info, skipped } = await ensureSeeded(options);
  if (skipped) {
    process.stdout.write(
      `${BENCH_DATABASE_URL} already holds ${info.messages.toLocaleString('en-US')} seeded messages ` +
        `(${info.bigChat.toLocaleString('en-US')} in the big chat), seeded ${info.seededAt} in ${info.seconds} s; ` +
        `--force reseeds\n`,
    );
  } else {
    process.stdout.write(
      `seeded ${info.messages.toLocaleString('en-US')} messages in ${info.seconds} s ` +
        `(${info.messagesPerSecond.toLocaleString('en-US')} messages/s including indexes and vacuum)\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`seed failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
