'use strict';
// Clicks through the example web application in a real browser (Debian's chromium,
// headless, driven by playwright-core): the resume dialog after a worker killed
// mid-batch, Resume to 100% live, Discard, the three-step delete with backup, the
// download checked with zstd and its SHA-256, restore, a forced backup failure, a second
// user who sees nothing of the first, and the download endpoint's status codes.
//
// Run by examples/webapp/test/run (which starts a cluster); needs:
//   DATABASE_URL  the server's connection (role authenticator)
//   ADMIN_URL     a superuser's connection to the same database (checks and settings)
//   SCREENSHOTS   where the screenshots go
//   CHROMIUM      the browser (default /usr/bin/chromium)

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const { Client } = require('pg');
const { chromium } = require('playwright-core');

const SCREENSHOTS = process.env.SCREENSHOTS || path.join(__dirname, '..', 'screenshots');
const WEB_PORT = Number(process.env.WEB_PORT || 18080);
const BASE = `http://127.0.0.1:${WEB_PORT}`;
const TIMEOUT = 60000; // generous bound for every wait on a condition

let server, serverLog = '', admin, browser, context, page, shot = 0;

async function screenshot(name) {
  shot += 1;
  const file = path.join(SCREENSHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function sql(text, params) {
  return (await admin.query(text, params)).rows;
}

async function waitFor(what, fn) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The pid the server logged for the worker of a job.
function workerPid(job) {
  const m = serverLog.match(new RegExp(`worker pid (\\d+) started for \\w+ job ${job}`));
  return m && Number(m[1]);
}

async function itemCounts(job) {
  const rows = await sql(
    `SELECT i.status, count(*)::int AS n FROM batchguard.batch_items i
       JOIN batchguard.batches b USING (batch_id) WHERE b.job_id = $1 GROUP BY i.status`, [job]);
  const counts = { pending: 0, running: 0, completed: 0, failed: 0 };
  for (const r of rows) counts[r.status] = r.n;
  return counts;
}

async function signIn(user) {
  await context.clearCookies();
  await page.goto(BASE);
  await page.waitForSelector('body[data-ready="true"]');
  await page.click(`#login-${user}`);
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('body[data-ready="true"]');
}

// Starts a generation batch from the page and kills its worker with SIGKILL once
// `atLeast` items are completed; returns the job id.
async function startAndKill(templates, { failSome, atLeast }) {
  await page.fill('#templates', String(templates));
  await page.setChecked('#fail-some', failSome);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/batches') && r.request().method() === 'POST'),
    page.click('#start-generation'),
  ]);
  const { job_id: job } = await response.json();
  const pid = await waitFor('the worker pid', () => workerPid(job));
  await waitFor(`${atLeast} completed items`, async () => (await itemCounts(job)).completed >= atLeast);
  process.kill(pid, 'SIGKILL');
  await waitFor('the worker to end', () => serverLog.includes(`worker pid ${pid} for alice job ${job} ended`));
  return job;
}

before(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  admin = new Client({ connectionString: process.env.ADMIN_URL });
  await admin.connect();
  server = spawn(process.execPath, [path.join(__dirname, '..', 'server.js')], {
    env: { ...process.env, PORT: String(WEB_PORT), WORKER_DELAY_MS: '80' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  await waitFor('the server to listen', () => serverLog.includes('listening on'));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // As root Chromium needs --no-sandbox; /dev/shm may be small in containers.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  await admin?.end();
  fs.writeFileSync(path.join(SCREENSHOTS, 'server.log'), serverLog);
});

test('the download endpoint says 401 without a user', async () => {
  const r = await fetch(`${BASE}/api/backup/download/00000000-0000-0000-0000-000000000000`);
  assert.equal(r.status, 401);
  await page.goto(BASE);
  await page.waitForSelector('#sign-in:not([hidden])');
  await screenshot('sign-in');
});

let resumedJob;

test('a worker killed mid-batch: the resume dialog, then Resume reaches 100% live', async () => {
  await signIn('alice');
  await screenshot('alice-empty');
  const job = await startAndKill(40, { failSome: true, atLeast: 10 });
  resumedJob = job;
  const counts = await itemCounts(job);
  assert.ok(counts.completed >= 10 && counts.completed + counts.failed < 40, JSON.stringify(counts));

  await page.reload();
  const entry = page.locator(`#resume-dialog .resume-batch[data-job="${job}"]`);
  await entry.waitFor();
  assert.equal(await entry.locator('.completed').textContent(), `${counts.completed} completed`);
  assert.equal(await entry.locator('.failed').textContent(), `${counts.failed} failed`);
  const pending = 40 - counts.completed - counts.failed - counts.running;
  assert.equal(await entry.locator('.pending').textContent(), `${pending} pending`);
  assert.ok(counts.failed > 0, 'every 7th template fails');
  assert.match(await entry.locator('.failed-note').textContent(), /failed: Resume retries them/);
  assert.match(await entry.locator('.meta').textContent(), /last updated/);
  await screenshot('resume-dialog');

  await entry.locator('button.resume').click();
  // No reload from here on: the summary is moved by progress events over SSE.
  const card = page.locator(`.batch-card[data-job="${job}"]`);
  await page.locator('#resume-dialog').waitFor({ state: 'hidden' });
  await card.locator('.meta', { hasText: 'worker running' }).waitFor();
  await card.locator('.badge', { hasText: 'In progress' }).waitFor();
  await screenshot('summary-in-progress');
  await card.locator('.percentage', { hasText: '100.00%' }).waitFor();
  await card.locator('.badge', { hasText: 'Completed' }).waitFor();
  assert.match(await card.locator('.counts').textContent(), /^40 completed · 0 failed · 0 pending/);
  await screenshot('summary-completed');

  const [{ rows, templates }] = await sql(
    `SELECT count(*)::int AS rows, count(DISTINCT template_id)::int AS templates
       FROM webapp.conversations WHERE job_id = $1`, [job]);
  assert.deepEqual({ rows, templates }, { rows: 40, templates: 40 }, 'each template exactly once');
});

test('Discard removes an interrupted batch', async () => {
  const job = await startAndKill(40, { failSome: false, atLeast: 3 });
  await page.reload();
  const entry = page.locator(`#resume-dialog .resume-batch[data-job="${job}"]`);
  await entry.waitFor();
  await screenshot('discard-dialog');
  await entry.locator('button.discard').click();
  await page.locator('#resume-dialog').waitFor({ state: 'hidden' });
  assert.deepEqual(await sql('SELECT 1 FROM batchguard.batches WHERE job_id = $1', [job]), []);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.locator('#resume-dialog').isVisible(), false);
  await screenshot('after-discard');
});

async function selectConversations(ids) {
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  for (const id of ids) await page.check(`#conversations tr[data-id="${id}"] input`);
  await page.click('#delete-selected');
  await page.locator('#step-confirm').waitFor();
}

let restoredBackup;

test('the three-step delete with backup, the download, and restore', async () => {
  const ids = (await sql('SELECT id::text FROM webapp.conversations WHERE job_id = $1 ORDER BY id LIMIT 3',
                         [resumedJob])).map((r) => r.id);
  await selectConversations(ids);
  // Step 1: what will be deleted, children included.
  const preview = page.locator('#preview-table');
  await preview.locator('tr[data-table="webapp.conversations"] .rows', { hasText: '3' }).waitFor();
  assert.equal(await preview.locator('tr[data-table="webapp.messages"] .rows').textContent(), '9');
  await screenshot('delete-step1-confirm');

  // Step 2: the backup, its progress and its file information.
  await page.click('#to-backup');
  await page.click('#create-backup');
  await page.locator('#backup-info').waitFor();
  // The "done" event comes over SSE (NOTIFY at commit), independently of the HTTP answer
  // that shows #backup-info: wait for it rather than expect it to have arrived first.
  await page.locator('#export-progress .text', { hasText: /done: 12 rows/ }).waitFor();
  assert.match(await page.locator('#backup-info .rows').textContent(), /^12 /);
  await screenshot('delete-step2-backup');

  // Step 3: the delete.
  await page.click('#to-final');
  await page.click('#confirm-delete');
  await page.locator('#delete-result').waitFor();
  assert.match(await page.locator('#delete-result').textContent(), /Deleted 3 conversation/);
  await screenshot('delete-step3-done');
  assert.deepEqual(await sql('SELECT id FROM webapp.conversations WHERE id = ANY($1::bigint[])', [ids]), []);
  assert.deepEqual(await sql('SELECT id FROM webapp.messages WHERE conversation_id = ANY($1::bigint[])', [ids]), []);

  // The download: its bytes pass zstd -t and match file_sha256.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#final-download')]);
  const file = path.join(SCREENSHOTS, download.suggestedFilename());
  await download.saveAs(file);
  assert.match(download.suggestedFilename(), /^conversations-backup-\d{4}-\d\d-\d\d-[0-9a-f]{8}\.jsonl\.zst$/);
  const backupId = (await page.getAttribute('#final-download', 'href')).split('/').pop();
  const [backup] = await sql('SELECT file_sha256, compressed_bytes FROM batchguard.backups WHERE backup_id = $1',
                             [backupId]);
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.length, Number(backup.compressed_bytes));
  assert.equal(crypto.createHash('sha256').update(bytes).digest('hex'), backup.file_sha256);
  execFileSync('zstd', ['-q', '-t', file]);
  // The step-2 backup was superseded by the delete's own backup in the same transaction.
  assert.equal((await sql(`SELECT count(*)::int AS n FROM batchguard.backups WHERE owner = 'web_user/alice'`))[0].n, 1);

  // The endpoint's headers, from outside the browser.
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const r = await fetch(`${BASE}/api/backup/download/${backupId}`, { headers: { cookie } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/zstd');
  assert.equal(r.headers.get('content-length'), String(backup.compressed_bytes));
  assert.equal(r.headers.get('etag'), `"${backup.file_sha256}"`);
  assert.match(r.headers.get('content-disposition'), /^attachment; filename="conversations-backup-.*\.jsonl\.zst"$/);
  assert.equal(Buffer.from(await r.arrayBuffer()).compare(bytes), 0);
  const cached = await fetch(`${BASE}/api/backup/download/${backupId}`,
                             { headers: { cookie, 'if-none-match': `"${backup.file_sha256}"` } });
  assert.equal(cached.status, 304);

  // Restore brings every row back.
  await page.click('#final-restore');
  await page.locator('#restore-result', { hasText: 'Restored 12 row(s)' }).waitFor();
  await page.locator(`#conversations tr[data-id="${ids[0]}"]`).waitFor();
  await screenshot('restored');
  assert.equal((await sql('SELECT count(*)::int AS n FROM webapp.conversations WHERE id = ANY($1::bigint[])', [ids]))[0].n, 3);
  assert.equal((await sql('SELECT count(*)::int AS n FROM webapp.messages WHERE conversation_id = ANY($1::bigint[])', [ids]))[0].n, 9);
  restoredBackup = backupId;
});

async function setQuota(value) {
  await sql(value === null ? 'ALTER SYSTEM RESET batchguard.max_backup_bytes_per_owner'
                           : `ALTER SYSTEM SET batchguard.max_backup_bytes_per_owner = '${value}'`);
  await sql('SELECT pg_reload_conf()');
  const expected = value === null ? '-1' : value;
  await waitFor('the new quota', async () => {
    const c = new Client({ connectionString: process.env.DATABASE_URL });
    await c.connect();
    const [{ q }] = (await c.query("SELECT current_setting('batchguard.max_backup_bytes_per_owner') AS q")).rows;
    await c.end();
    return q === expected;
  });
}

test('a backup that fails (quota) prevents the delete and says why', async () => {
  const ids = (await sql('SELECT id::text FROM webapp.conversations WHERE job_id = $1 ORDER BY id DESC LIMIT 2',
                         [resumedJob])).map((r) => r.id);
  await setQuota('0');
  try {
    // Step 2's backup fails: the final step is blocked.
    await selectConversations(ids);
    await page.click('#to-backup');
    await page.click('#create-backup');
    await page.locator('#backup-error', { hasText: 'backup quota of the owner exceeded' }).waitFor();
    await screenshot('backup-failed');
    await page.click('#to-final-blocked');
    await page.locator('#delete-blocked', { hasText: 'The backup failed' }).waitFor();
    assert.equal(await page.isDisabled('#confirm-delete'), true);
    await screenshot('delete-blocked');

    // Skipping the download does not skip the delete's own backup: it fails, nothing deleted.
    await selectConversations(ids);
    await page.click('#to-backup');
    await page.click('#skip-backup');
    await page.click('#confirm-delete');
    await page.locator('#delete-error', { hasText: 'Nothing was deleted: backup quota of the owner exceeded' }).waitFor();
    await screenshot('delete-failed');
    assert.equal((await sql('SELECT count(*)::int AS n FROM webapp.conversations WHERE id = ANY($1::bigint[])', [ids]))[0].n, 2);
    assert.equal((await sql('SELECT count(*)::int AS n FROM webapp.messages WHERE conversation_id = ANY($1::bigint[])', [ids]))[0].n, 6);
  } finally {
    await setQuota(null);
  }
});

test("a second user sees none of the first user's batches or backups", async () => {
  await signIn('bob');
  assert.equal(await page.locator('#resume-dialog').isVisible(), false);
  assert.equal(await page.locator('.batch-card').count(), 0);
  assert.equal(await page.locator('#backups tbody tr').count(), 0);
  assert.equal(await page.locator('#conversations tbody tr').count(), 0);
  await screenshot('bob-sees-nothing');

  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const alices = await fetch(`${BASE}/api/backup/download/${restoredBackup}`, { headers: { cookie } });
  const unknown = await fetch(`${BASE}/api/backup/download/${crypto.randomUUID()}`, { headers: { cookie } });
  assert.equal(alices.status, 404);
  assert.equal(unknown.status, 404);
  assert.deepEqual(await alices.json(), await unknown.json(), 'indistinguishable');
  const restore = await fetch(`${BASE}/api/backup/${restoredBackup}/restore`, { method: 'POST', headers: { cookie } });
  assert.equal(restore.status, 404);
});

test('an expired backup is 410 Gone', async () => {
  await signIn('alice');
  // Time travel for the test: the superuser moves the backup's expiry into the past.
  await sql("UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = $1",
            [restoredBackup]);
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const r = await fetch(`${BASE}/api/backup/download/${restoredBackup}`, { headers: { cookie } });
  assert.equal(r.status, 410);
  await page.reload();
  await page.locator(`#backups tr[data-backup="${restoredBackup}"] .status`, { hasText: 'expired' }).waitFor();
  await screenshot('backup-expired');
});
