'use strict';
// The Node.js recipes of docs/clients.md, against a real server: node-postgres, Knex,
// Kysely and Sequelize. Run by test/e2e/clients with DATABASE_URL set (an ordinary role).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const pg = require('pg');
const knexFactory = require('knex');
const { Kysely, PostgresDialect, sql } = require('kysely');
const { Sequelize, QueryTypes } = require('sequelize');

const DATABASE_URL = process.env.DATABASE_URL;

// ------------------------------------------------------------------------ node-postgres

test('node-postgres: arrays, JSON, lease tokens, PB001, LISTEN, read_backup', async () => {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const job = 'node-pg';
  try {
    // A JS array is sent as a PostgreSQL array: text[] parameters take JS arrays, [] too.
    const { rows: [{ pending }] } = await client.query(
      'SELECT batchguard.filter_pending_items($1, $2::text[]) AS pending', [job, ['a', 'b']]);
    assert.deepEqual(pending, ['a', 'b']);
    const { rows: [{ none }] } = await client.query(
      'SELECT batchguard.filter_pending_items($1, $2::text[]) AS none', [job, []]);
    assert.deepEqual(none, []);
    // ... so a JSON array (failed_items jsonb) must be JSON.stringify'd: a raw JS array
    // would become '{...}' and fail as JSON.
    const { rows: [p] } = await client.query(
      'SELECT * FROM batchguard.save_checkpoint($1, $2::text[], $3::jsonb, $4)',
      [job, ['a'], JSON.stringify([{ item_id: 'b', error: 'timeout' }]), 10]);
    // bigint and numeric come back as strings (they may not fit a JS number).
    assert.equal(p.completed, '1');
    assert.equal(p.failed, '1');
    assert.equal(p.percentage, '20.00');
    await assert.rejects(
      client.query('SELECT batchguard.save_checkpoint($1, $2::text[], $3)', [job, [], [{ item_id: 'c' }]]),
      (e) => e.code === '22P02');

    // Leases: tokens are bigint, so strings; a BigInt is accepted as a parameter too.
    await client.query('SELECT batchguard.start_batch($1, $2::text[])', [`${job}-leases`, ['x', 'y']]);
    const { rows: held } = await client.query(
      'SELECT item_id, lease_token FROM batchguard.claim_items($1, 2)', [`${job}-leases`]);
    assert.equal(typeof held[0].lease_token, 'string');
    await client.query('BEGIN');
    const { rows: [{ done }] } = await client.query(
      'SELECT batchguard.complete_item($1, $2, NULL, $3) AS done', [`${job}-leases`, held[0].item_id, held[0].lease_token]);
    assert.equal(done, true);
    await client.query('COMMIT');
    const { rows: [{ done: done2 }] } = await client.query(
      'SELECT batchguard.complete_item($1, $2, NULL, $3) AS done',
      [`${job}-leases`, held[1].item_id, BigInt(held[1].lease_token)]);
    assert.equal(done2, true);
    // A stale token: PB001, to be caught by its code; the transaction rolls back.
    await client.query('SELECT batchguard.add_items($1, $2::text[])', [`${job}-leases`, ['z']]);
    const { rows: [z] } = await client.query('SELECT lease_token FROM batchguard.claim_items($1)', [`${job}-leases`]);
    await assert.rejects(
      client.query('SELECT batchguard.complete_item($1, $2, NULL, $3)',
                   [`${job}-leases`, 'z', (BigInt(z.lease_token) + 1000n).toString()]),
      (e) => e.code === 'PB001');

    // LISTEN on the owner's channel (an identifier: quote it).
    const { rows: [{ channel }] } = await client.query('SELECT batchguard.progress_channel() AS channel');
    const listener = new pg.Client({ connectionString: DATABASE_URL });
    await listener.connect();
    await listener.query(`LISTEN "${channel}"`);
    const heard = new Promise((resolve) => listener.on('notification', (n) => resolve(n.payload)));
    await client.query('SELECT batchguard.complete_item($1, $2)', [`${job}-listen`, 'one']);
    assert.equal(await heard, `${job}-listen`);
    await listener.end();

    // read_backup in chunks to a file, checked with the SHA-256 and zstd.
    await client.query('CREATE TABLE IF NOT EXISTS node_conv (id int PRIMARY KEY, body text)');
    await client.query("INSERT INTO node_conv SELECT g, repeat('y', g) FROM generate_series(1, 400) g ON CONFLICT DO NOTHING");
    const { rows: [b] } = await client.query(
      "SELECT backup_id, compressed_bytes, file_sha256 FROM batchguard.export_backup('node_conv')");
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bg-node-')), 'backup.jsonl.zst');
    const out = fs.openSync(file, 'w');
    const hash = crypto.createHash('sha256');
    for (let offset = 0; offset < Number(b.compressed_bytes); offset += 1000) {
      const { rows: [{ chunk }] } = await client.query(
        'SELECT batchguard.read_backup($1, $2, $3) AS chunk', [b.backup_id, offset, 1000]);
      hash.update(chunk);
      fs.writeSync(out, chunk);
    }
    fs.closeSync(out);
    assert.equal(hash.digest('hex'), b.file_sha256);
    execFileSync('zstd', ['-q', '-t', file]);

    // The trap: SELECT * FROM f(unknown) is a row of NULLs; filter it out.
    const { rows: ghost } = await client.query('SELECT * FROM batchguard.calculate_progress($1)', ['nope']);
    assert.equal(ghost.length, 1);
    assert.equal(ghost[0].job_id, null);
    const { rows: none2 } = await client.query(
      'SELECT * FROM batchguard.calculate_progress($1) p WHERE p.job_id IS NOT NULL', ['nope']);
    assert.equal(none2.length, 0);
  } finally {
    await client.end();
  }
});

// -------------------------------------------------------------------------------- Knex

test('Knex: raw calls with bindings, arrays, JSON, leases in a transaction', async () => {
  const knex = knexFactory({ client: 'pg', connection: DATABASE_URL });
  const job = 'node-knex';
  try {
    await knex.raw('CREATE TABLE IF NOT EXISTS knex_output (job_id text, item_id text)');
    // knex.raw('?', [array]) sends a JS array as a PostgreSQL array.
    const pending = (await knex.raw('SELECT batchguard.filter_pending_items(?, ?::text[]) AS p',
                                    [job, ['a', 'b']])).rows[0].p;
    assert.deepEqual(pending, ['a', 'b']);
    assert.deepEqual((await knex.raw('SELECT batchguard.filter_pending_items(?, ?::text[]) AS p',
                                     [job, []])).rows[0].p, []);
    await knex.raw('SELECT batchguard.save_checkpoint(?, ?::text[], ?::jsonb)',
                   [job, ['a'], JSON.stringify([{ item_id: 'b', error: 'oops' }])]);
    await knex.raw('SELECT batchguard.start_batch(?, ?::text[])', [`${job}-leases`, ['x']]);
    const [lease] = (await knex.raw('SELECT item_id, lease_token FROM batchguard.claim_items(?, 1)',
                                    [`${job}-leases`])).rows;
    await knex.transaction(async (trx) => {
      await trx('knex_output').insert({ job_id: job, item_id: lease.item_id });
      const done = (await trx.raw('SELECT batchguard.complete_item(?, ?, NULL, ?) AS done',
                                  [`${job}-leases`, lease.item_id, lease.lease_token])).rows[0].done;
      assert.equal(done, true);
    });
    const p = (await knex.raw('SELECT p.* FROM batchguard.calculate_progress(?) p', [`${job}-leases`])).rows[0];
    assert.equal(p.status, 'completed');
  } finally {
    await knex.destroy();
  }
});

// ------------------------------------------------------------------------------ Kysely

test('Kysely: sql template calls with arrays, JSON and BigInt tokens', async () => {
  const db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: DATABASE_URL }) }) });
  const job = 'node-kysely';
  try {
    const pending = await sql`SELECT batchguard.filter_pending_items(${job}, ${['a', 'b']}::text[]) AS p`.execute(db);
    assert.deepEqual(pending.rows[0].p, ['a', 'b']);
    const empty = await sql`SELECT batchguard.filter_pending_items(${job}, ${[]}::text[]) AS p`.execute(db);
    assert.deepEqual(empty.rows[0].p, []);
    const failed = JSON.stringify([{ item_id: 'b', error: 'oops' }]);
    const saved = await sql`SELECT * FROM batchguard.save_checkpoint(${job}, ${['a']}::text[], ${failed}::jsonb)`.execute(db);
    assert.equal(saved.rows[0].failed, '1');
    await sql`SELECT batchguard.start_batch(${`${job}-leases`}, ${['x']}::text[])`.execute(db);
    const claimed = await sql`SELECT item_id, lease_token FROM batchguard.claim_items(${`${job}-leases`}, 1)`.execute(db);
    const { item_id: item, lease_token: token } = claimed.rows[0];
    await db.transaction().execute(async (trx) => {
      const r = await sql`SELECT batchguard.complete_item(${`${job}-leases`}, ${item}, NULL, ${BigInt(token)}) AS done`.execute(trx);
      assert.equal(r.rows[0].done, true);
    });
  } finally {
    await db.destroy();
  }
});

// --------------------------------------------------------------------------- Sequelize

test('Sequelize: bind (not replacements) for arrays, JSON, leases in a transaction', async () => {
  const sequelize = new Sequelize(DATABASE_URL, { dialect: 'postgres', logging: false });
  const job = 'node-sequelize';
  try {
    // bind sends parameters ($1, $2...) like node-postgres: a JS array is a PostgreSQL array.
    const [row] = await sequelize.query('SELECT batchguard.filter_pending_items($1, $2::text[]) AS p',
                                        { bind: [job, ['a', 'b']], type: QueryTypes.SELECT });
    assert.deepEqual(row.p, ['a', 'b']);
    const [empty] = await sequelize.query('SELECT batchguard.filter_pending_items($1, $2::text[]) AS p',
                                          { bind: [job, []], type: QueryTypes.SELECT });
    assert.deepEqual(empty.p, []);
    // replacements inline an array as a list ('a', 'b'): not an array, the call fails.
    await assert.rejects(sequelize.query('SELECT batchguard.filter_pending_items(:job, :items)',
                                         { replacements: { job, items: ['a', 'b'] }, type: QueryTypes.SELECT }));
    const [saved] = await sequelize.query('SELECT * FROM batchguard.save_checkpoint($1, $2::text[], $3::jsonb)',
      { bind: [job, ['a'], JSON.stringify([{ item_id: 'b', error: 'oops' }])], type: QueryTypes.SELECT });
    assert.equal(saved.failed, '1');
    await sequelize.query('SELECT batchguard.start_batch($1, $2::text[])', { bind: [`${job}-leases`, ['x']] });
    const [lease] = await sequelize.query('SELECT item_id, lease_token FROM batchguard.claim_items($1, 1)',
                                          { bind: [`${job}-leases`], type: QueryTypes.SELECT });
    await sequelize.transaction(async (transaction) => {
      const [r] = await sequelize.query('SELECT batchguard.complete_item($1, $2, NULL, $3) AS done',
        { bind: [`${job}-leases`, lease.item_id, lease.lease_token], type: QueryTypes.SELECT, transaction });
      assert.equal(r.done, true);
    });
    // PB001 (a stale lease token) arrives as a DatabaseError whose parent has the code.
    await sequelize.query('SELECT batchguard.add_items($1, $2::text[])', { bind: [`${job}-leases`, ['y']] });
    const [y] = await sequelize.query('SELECT lease_token FROM batchguard.claim_items($1, 1)',
                                      { bind: [`${job}-leases`], type: QueryTypes.SELECT });
    await assert.rejects(
      sequelize.query('SELECT batchguard.complete_item($1, $2, NULL, $3)',
                      { bind: [`${job}-leases`, 'y', (BigInt(y.lease_token) + 1000n).toString()], type: QueryTypes.SELECT }),
      (e) => e.parent && e.parent.code === 'PB001');
  } finally {
    await sequelize.close();
  }
});
