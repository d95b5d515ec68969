import pg from 'pg';
import { closeSharedApp } from './app.js';
import { profile } from './profile.js';

/** The services profile's database is created if it does not exist yet (as `make test-services` expects). */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) return;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    process.stdout.write(`  test profile: ${profile.name}\n`);
    if (profile.env.DATABASE_URL) await ensureDatabase(profile.env.DATABASE_URL);
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await closeSharedApp();
  },
};
