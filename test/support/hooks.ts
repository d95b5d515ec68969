import { ensureDatabaseExists } from '../../src/infra/db.js';
import { closeSharedApp } from './app.js';
import { profile } from './profile.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    process.stdout.write(`  test profile: ${profile.name}\n`);
    if (profile.env.DATABASE_URL) await ensureDatabaseExists(profile.env.DATABASE_URL);
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await closeSharedApp();
  },
};
