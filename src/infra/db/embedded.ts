import fs from 'node:fs';
import knexPkg, { type Knex } from 'knex';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from '../logger.js';
import { quiet } from './pg-client.js';

/** PGlite in this process (DATA_DIR, or memory://), behind knex's pg client: one connection. */
export async function openEmbedded(dataDir: string, logger: Logger): Promise<{ knex: Knex; pglite: PGlite }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  const { unaccent } = await import('@electric-sql/pglite/contrib/unaccent');
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  if (!dataDir.startsWith('memory://')) fs.mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir, { extensions: { pg_trgm, unaccent } });
  const pgConfig = createPgConfig(pglite);
  const knex = knexPkg.knex({
    client: 'pg',
    // A provider function: knex deep-clones a plain connection object, which would copy PGlite itself.
    connection: () => pgConfig as unknown as Knex.PgConnectionConfig,
    pool: { min: 1, max: 1 },
    acquireConnectionTimeout: 60_000,
    ...quiet(logger),
  });
  return { knex, pglite };
}
