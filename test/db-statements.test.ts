import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { run, statement } from '../src/infra/db.js';
import { sharedApp, type TestApp } from './support/app.js';

/** A statement name no other test of the run uses. */
const fresh = (what: string) => `test.${what}.${randomUUID().slice(0, 8)}`;

describe('prepared statements (run, statement)', () => {
  let app: TestApp;

  before(async () => {
    app = await sharedApp();
  });

  it('when a name appears twice beside colons in literals, quoted names, comments and casts, then it is one placeholder and the rest reaches the server as written', async () => {
    const twice = statement<{ n: number; word: string }, Record<string, unknown>>(
      fresh('placeholders'),
      `SELECT :n::int + CAST(:n AS int) AS sum, :word::text AS word, 'HH24:MI:SS' AS literal,
              1 AS "a:b" -- :comment
      `,
    );
    assert.equal((twice.text.match(/\$\d/g) ?? []).join(' '), '$1 $1 $2');
    const { rows } = await run(app.service.db.knex, twice, { n: 20, word: "it's" });
    assert.deepEqual(rows, [{ sum: 40, word: "it's", literal: 'HH24:MI:SS', 'a:b': 1 }]);
  });

  it('when an argument is missing, then nothing is sent and the statement is refused with its name', async () => {
    const name = fresh('missing');
    type Args = { a: number; b: number | null };
    const partial = statement<Args, Args>(name, 'SELECT :a::int AS a, :b::int AS b');
    const withoutB = { a: 1 } as Args;
    assert.throws(() => partial.values(withoutB), new RegExp(`${name}: no value for :b`));
    await assert.rejects(run(app.service.db.knex, partial, withoutB), /no value for :b/);
    // Null is a value.
    assert.deepEqual((await run(app.service.db.knex, partial, { a: 1, b: null })).rows, [{ a: 1, b: null }]);
  });

  it('when two statements take the same name with different texts, then the second is refused', () => {
    const name = fresh('twice');
    statement(name, 'SELECT 1');
    statement(name, 'SELECT 1');
    assert.throws(() => statement(name, 'SELECT 2'), /two different statements/);
  });

  it('when a statement fails on the server, then its connection goes back to the pool and the next one runs', async () => {
    const failing = statement<object, never>(fresh('failing'), 'SELECT 1 / 0');
    const ok = statement<{ x: number }, { x: number }>(fresh('ok'), 'SELECT :x::int AS x');
    const { knex } = app.service.db;
    // More attempts than the pool has connections: a connection kept by a failure would stall them.
    for (let i = 0; i < 12; i++) {
      await assert.rejects(run(knex, failing, {}), { code: '22012' });
      assert.deepEqual((await run(knex, ok, { x: i })).rows, [{ x: i }]);
    }
  });

  it('when run in a transaction, then it runs on the transaction’s connection', async () => {
    const setting = statement<object, { name: string }>(
      fresh('setting'),
      "SELECT current_setting('application_name') AS name",
    );
    const inside = await app.service.db.knex.transaction(async (trx) => {
      await trx.raw("SET LOCAL application_name = 'inside-a-transaction'");
      return (await run(trx, setting, {})).rows[0]?.name;
    });
    assert.equal(inside, 'inside-a-transaction');
  });
});
