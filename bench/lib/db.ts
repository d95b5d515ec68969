import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN_JS = path.join(ROOT, 'dist/src/main.js');

export const DEFAULT_BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/messenger_bench';

/** BENCH_DATABASE_URL, else DATABASE_URL (the seed empties its tables first), else the default. */
export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL || DEFAULT_BENCH_DATABASE_URL;

export function pool(max: number, url = BENCH_DATABASE_URL): pg.Pool {
  return new pg.Pool({ connectionString: url, max });
}

/** Applies the schema with the built binary: `node dist/src/main.js migrate`. */
export async function migrate(url = BENCH_DATABASE_URL): Promise<void> {
  if (!fs.existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first`);
  const skip = new Set(['REDIS_URL', 'AMQP_URL', 'POSTGRES_HOSTS', 'POSTGRES_HOST']);
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !skip.has(name))),
    DATABASE_URL: url,
    LOG_LEVEL: 'warn',
  };
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_JS, 'migrate'], { cwd: ROOT, env, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`migrate exited with ${code}`))));
  });
}
