import type { Knex } from 'knex';
import * as core from './001_core.js';
import * as search from './002_search.js';
import * as searchOrder from './003_search_order.js';
import * as client from './004_client.js';
import * as events from './005_events.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

// Listed here rather than read from the folder, so the same list works from src/ and from dist/.
const migrations: Record<string, Migration> = {
  '001_core': core,
  '002_search': search,
  '003_search_order': searchOrder,
  '004_client': client,
  '005_events': events,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve(Object.keys(migrations)),
  getMigrationName: (name) => name,
  getMigration: (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return Promise.resolve(migration);
  },
};
