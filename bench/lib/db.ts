import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN_JS = path.join(ROOT, 'dist/src/main.js');

export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/messenger_bench';

export function pool(max: number, url = BENCH_DATABASE_URL): pg.Pool {
  return new pg.Pool({ connectionString: url, max });
}

/** Creates the bench database when it is missing (through the server's `postgres` database). */
export async function ensureDatabase(url = BENCH_DATABASE_URL): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[\w-]+$/.test(name)) throw new Error(`unusable database name "${name}" in BENCH_DATABASE_URL`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    await client.query(`CREATE DATABASE "${name}"`);
    return true;
  } finally {
    await client.end();
  }
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
