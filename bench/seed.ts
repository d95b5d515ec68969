/**
 * `npm run seed -- [--users N] [--chats N] [--messages N] [--big-chat N] [--jobs N] [--force]`
 *
 * Fills the bench database (BENCH_DATABASE_URL, else DATABASE_URL; created when missing, migrated
 * with the built binary) with users, chats and Russian/English messages. Does nothing when the
 * database already holds at least that much seeded data, unless --force. `--help` lists the flags.
 */
import { BENCH_DATABASE_URL } from './lib/db.js';
import { SEED_FLAGS, ensureSeeded, seedArgs } from './lib/seeding.js';

async function main(): Promise<void> {
  const { options, help } = seedArgs(process.argv.slice(2));
  if (help) return void process.stdout.write(`npm run seed -- [flags]\n\n${SEED_FLAGS}\n`);
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
