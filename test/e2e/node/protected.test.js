'use strict';
// Protected tables (issue 17) from Node.js ORMs on node-postgres: Sequelize's
// Model.destroy() and Knex's del() in the application's own transactions, nothing else.
// The backup appears, holds the deleted rows and their cascaded children and restores them
// identically; when the backup cannot be made (the role's quota set to 0 by the
// administrator) the transaction's COMMIT fails and every row is still there.
// Run by test/e2e/clients with DATABASE_URL (an ordinary role) and ADMIN_DATABASE_URL.

const test = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const knexFactory = require('knex');
const { Sequelize, DataTypes, QueryTypes } = require('sequelize');

const DATABASE_URL = process.env.DATABASE_URL;
const ADMIN_DATABASE_URL = process.env.ADMIN_DATABASE_URL;

async function admin(sql) {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

test('Sequelize and Knex: deletes on a protected table are backed up; a failed backup fails the commit', async () => {
  const sequelize = new Sequelize(DATABASE_URL, { dialect: 'postgres', logging: false });
  const Order = sequelize.define('e2e_node_order', {
    id: { type: DataTypes.INTEGER, primaryKey: true },
    customer: { type: DataTypes.TEXT, allowNull: false },
    placed: { type: DataTypes.DATE },
  }, { tableName: 'e2e_node_order', timestamps: false });
  const Item = sequelize.define('e2e_node_item', {
    id: { type: DataTypes.INTEGER, primaryKey: true },
    sku: { type: DataTypes.TEXT },
  }, { tableName: 'e2e_node_item', timestamps: false });
  Order.hasMany(Item, { foreignKey: { name: 'order_id', allowNull: false }, onDelete: 'CASCADE' });
  const knex = knexFactory({ client: 'pg', connection: DATABASE_URL });
  const contents = async () => {
    const [row] = await sequelize.query(
      `SELECT (SELECT string_agg(to_jsonb(o)::text, ',' ORDER BY id) FROM e2e_node_order o) AS orders,
              (SELECT string_agg(to_jsonb(i)::text, ',' ORDER BY id) FROM e2e_node_item i) AS items`,
      { type: QueryTypes.SELECT });
    return row;
  };
  const backupCount = async () => {
    const [row] = await sequelize.query('SELECT count(*)::int AS n FROM batchguard.get_user_backups()',
                                        { type: QueryTypes.SELECT });
    return row.n;
  };
  const restore = async (id) => {
    const [row] = await sequelize.query('SELECT batchguard.restore_backup($1) AS r',
                                        { bind: [id], type: QueryTypes.SELECT });
    return row.r;
  };
  try {
    await sequelize.query('DROP TABLE IF EXISTS e2e_node_item, e2e_node_order');
    await sequelize.sync();
    for (let o = 1; o <= 6; o++) {
      await Order.create({ id: o, customer: `customer ${o}`, placed: new Date(Date.UTC(2024, 0, o, 10, 30)) });
      for (let k = 0; k < 3; k++) await Item.create({ id: o * 10 + k, order_id: o, sku: `sku-${o}-${k}` });
    }
    await sequelize.query("SELECT batchguard.protect_table('e2e_node_order')");
    const before = await contents();
    const count = await backupCount();

    // Sequelize: Model.destroy() in a managed transaction.
    let backupId;
    await sequelize.transaction(async (transaction) => {
      assert.equal(await Order.destroy({ where: { id: [2, 5] }, transaction }), 2);
      const [row] = await sequelize.query('SELECT batchguard.last_backup_id() AS id',
                                          { type: QueryTypes.SELECT, transaction });
      backupId = row.id;
    });
    assert.ok(backupId, 'the pending backup has an id in the transaction');
    assert.equal(await backupCount(), count + 1, 'one backup for the transaction');
    const [b] = await sequelize.query('SELECT row_counts FROM batchguard.get_backup($1)',
                                      { bind: [backupId], type: QueryTypes.SELECT });
    assert.deepEqual(b.row_counts, { 'public.e2e_node_order': 2, 'public.e2e_node_item': 6 });
    assert.equal((await restore(backupId)).inserted, 8);
    assert.deepEqual(await contents(), before, 'Sequelize: the restored rows are identical');

    // Knex: del() in a transaction, two statements, one backup.
    const knexBackup = await knex.transaction(async (trx) => {
      await trx('e2e_node_item').where({ id: 11 }).del();
      await trx('e2e_node_order').whereIn('id', [3]).del();
      const { rows: [row] } = await trx.raw('SELECT batchguard.last_backup_id() AS id');
      return row.id;
    });
    assert.equal(await backupCount(), count + 2, 'Knex: one more backup');
    assert.equal((await restore(knexBackup)).inserted, 5);  // item 11, order 3 and its 3 items
    assert.deepEqual(await contents(), before, 'Knex: the restored rows are identical');

    // A backup that cannot be made fails the commit (the role's quota: 0).
    await admin("ALTER ROLE clients SET batchguard.max_backup_bytes_per_owner = 0");
    const quota = new Sequelize(DATABASE_URL, { dialect: 'postgres', logging: false });
    try {
      const QuotaOrder = quota.define('e2e_node_order', {
        id: { type: DataTypes.INTEGER, primaryKey: true },
        customer: { type: DataTypes.TEXT },
        placed: { type: DataTypes.DATE },
      }, { tableName: 'e2e_node_order', timestamps: false });
      await assert.rejects(
        quota.transaction(async (transaction) => {
          await QuotaOrder.destroy({ where: { id: 4 }, transaction });
        }),
        (e) => (e.parent || e).code === '53400');
    } finally {
      await quota.close();
      await admin('ALTER ROLE clients RESET batchguard.max_backup_bytes_per_owner');
    }
    assert.deepEqual(await contents(), before, 'every row is still there after the failed commit');
    assert.equal(await backupCount(), count + 2, 'and no backup was left behind');
    await sequelize.query("SELECT batchguard.unprotect_table('e2e_node_order')");
  } finally {
    await knex.destroy();
    await sequelize.close();
  }
});
