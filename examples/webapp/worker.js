'use strict';
// The generation worker the web application starts as a child process: one conversation
// per template of a batch. For each template it writes the conversation (and its
// messages) and calls complete_item in ONE transaction, so a worker killed at any moment
// loses nothing and does nothing twice: after a restart, filter_pending_items says what
// is left.
//
//   DATABASE_URL=... node worker.js USER JOB      (FAIL_EVERY=n fails every n-th template)

const { Client } = require('pg');

const [user, job] = process.argv.slice(2);
const failEvery = Number(process.env.FAIL_EVERY || 0);
const delayMs = Number(process.env.WORKER_DELAY_MS || 60);

async function inTransaction(client, fn) {
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL ROLE web_user');
    await client.query("SELECT set_config('request.jwt.claims', $1, true)",
                       [JSON.stringify({ sub: user, role: 'web_user' })]);
    const result = await fn();
    await client.query(result === false ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  }
}

// Stands for the real work (a call to a model).
async function generate(template) {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  return [
    { role: 'system', content: `You are a helpful assistant (${template}).` },
    { role: 'user', content: `Write an example for ${template}.` },
    { role: 'assistant', content: `Here is an example generated from ${template}.` },
  ];
}

async function main() {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  // One progress event per committed item, so the browser's summary moves with every item
  // (the default rate limit, 250 ms per job and session, is meant for busier workers).
  await client.query("SET batchguard.notify_interval = '0'");
  const templates = await inTransaction(client, async () => {
    const batch = (await client.query(
      `SELECT metadata FROM batchguard.batches WHERE job_id = $1`, [job])).rows[0];
    if (!batch) throw new Error(`no batch ${job}`);
    const all = Array.from({ length: batch.metadata.templates },
                           (_, i) => `template-${String(i + 1).padStart(4, '0')}`);
    return (await client.query('SELECT batchguard.filter_pending_items($1, $2::text[]) AS items',
                               [job, all])).rows[0].items;
  });
  console.log(`worker for ${user} job ${job}: ${templates.length} templates to do`);
  for (const template of templates) {
    const messages = await generate(template);
    const number = Number(template.slice(-4));
    await inTransaction(client, async () => {
      if (failEvery && number % failEvery === 0) {
        await client.query("SELECT batchguard.fail_item($1, $2, 'model timeout', $3::jsonb)",
                           [job, template, JSON.stringify({ status: 504 })]);
        return true;
      }
      const id = (await client.query(
        `INSERT INTO webapp.conversations (job_id, template_id, title) VALUES ($1, $2, $3) RETURNING id`,
        [job, template, `Conversation from ${template}`])).rows[0].id;
      for (const [position, m] of messages.entries()) {
        await client.query(
          'INSERT INTO webapp.messages (conversation_id, position, role, content) VALUES ($1, $2, $3, $4)',
          [id, position, m.role, m.content]);
      }
      // false: already completed by someone else: roll back our conversation.
      return (await client.query('SELECT batchguard.complete_item($1, $2, $3::jsonb) AS done',
                                 [job, template, JSON.stringify({ conversation_id: id })])).rows[0].done;
    });
  }
  await client.end();
}

main().catch((e) => {
  console.error(`worker for ${user} job ${job} failed: ${e.message}`);
  process.exit(1);
});
