'use strict';
// The original system on pg_batchguard: a web application whose users run batch
// generation jobs and bulk-delete conversations. Node.js and `pg` only (Node 18 or later).
//
//   DATABASE_URL=postgresql://authenticator@host:port/app PORT=8080 node server.js
//
// Every request runs in one transaction that switches to the request's user the way
// PostgREST does (SET LOCAL ROLE web_user + set_config('request.jwt.claims', ..., true)),
// so pg_batchguard's owner is 'web_user/<user>' and each user sees only their own
// batches and backups. Nothing is ever set for the session: a pooled connection carries
// no identity from one request to the next.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { Pool, Client } = require('pg');

const DATABASE_URL = process.env.DATABASE_URL || 'postgresql://authenticator@localhost/app';
const PORT = Number(process.env.PORT || 8080);
const CHUNK_BYTES = Number(process.env.DOWNLOAD_CHUNK_BYTES || 1024 * 1024);
// The example's users. A real application verifies a token (a JWT, a session) here; the
// example's login form only names one of these users in a cookie.
const USERS = ['alice', 'bob'];

const pool = new Pool({ connectionString: DATABASE_URL, max: 8 });
pool.on('error', (e) => console.error('idle connection failed:', e.message));

// ---------------------------------------------------------------- identity per request

function claimsOf(user) {
  return JSON.stringify({ sub: user, role: 'web_user' });
}

// Runs fn(client) in one transaction as the given user, committed if fn returns.
async function asUser(user, fn) {
  const client = await pool.connect();
  let broken;
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL ROLE web_user');
    await client.query("SELECT set_config('request.jwt.claims', $1, true)", [claimsOf(user)]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError;
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

// -------------------------------------------------------------------- HTTP helpers

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

function userOf(req) {
  const user = cookies(req).user;
  return USERS.includes(user) ? user : null;
}

function requireUser(req) {
  const user = userOf(req);
  if (!user) throw new HttpError(401, 'sign in first');
  return user;
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1024 * 1024) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (!size) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

function idsOf(body) {
  const ids = body.ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => /^[0-9]+$/.test(String(id)))) {
    throw new HttpError(400, 'ids must be a non-empty list of conversation ids');
  }
  return ids.map(String);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// A PostgreSQL error as the user should read it: its message, and its detail and hint.
function pgErrorBody(e) {
  return { error: e.message, sqlstate: e.code, detail: e.detail, hint: e.hint };
}

// ---------------------------------------------------------- generation workers (children)

// Running workers by user and job: the resume dialog offers only batches nobody works on.
const workers = new Map(); // `${user}\u0000${job}` -> ChildProcess

function startWorker(user, job, { failEvery = 0 } = {}) {
  const key = `${user}\u0000${job}`;
  if (workers.has(key)) return workers.get(key).pid;
  const child = spawn(process.execPath, [path.join(__dirname, 'worker.js'), user, job], {
    env: { ...process.env, DATABASE_URL, FAIL_EVERY: String(failEvery) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  workers.set(key, child);
  // The browser test reads this line to kill the worker mid-batch.
  console.log(`worker pid ${child.pid} started for ${user} job ${job}`);
  child.on('exit', (code, signal) => {
    workers.delete(key);
    console.log(`worker pid ${child.pid} for ${user} job ${job} ended (${signal || code})`);
    // The last commits of a burst may not get a progress event of their own.
    pushProgress(user, job).catch((e) => console.error('progress refresh failed:', e.message));
  });
  return child.pid;
}

function workerRunning(user, job) {
  return workers.has(`${user}\u0000${job}`);
}

// ------------------------------------------------ live progress: LISTEN -> Server-Sent Events

const streams = new Map(); // user -> Set of SSE responses
const channels = new Map(); // progress channel -> user
let listener = null;

async function listenFor(user) {
  if ([...channels.values()].includes(user)) return;
  const channel = await asUser(user, async (c) =>
    (await c.query('SELECT batchguard.progress_channel() AS channel')).rows[0].channel);
  channels.set(channel, user);
  // LISTEN needs no privilege: the listening connection only learns job ids, and each
  // user's progress is then read as that user.
  await listener.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
}

async function startListener() {
  listener = new Client({ connectionString: DATABASE_URL });
  listener.on('notification', (n) => {
    const user = channels.get(n.channel);
    if (user) pushProgress(user, n.payload).catch((e) => console.error('progress event failed:', e.message));
  });
  listener.on('error', (e) => {
    console.error('the LISTEN connection failed:', e.message);
    process.exit(1);
  });
  await listener.connect();
}

function sendEvent(user, event, data) {
  for (const res of streams.get(user) || []) {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}

async function progressOf(c, job) {
  // calculate_progress returns one composite: NULL for an unknown job, which
  // SELECT * FROM f() shows as a row of NULLs, hence the WHERE.
  const r = await c.query(
    `SELECT p.*, extract(epoch FROM p.eta) AS eta_seconds
       FROM batchguard.calculate_progress($1) p WHERE p.job_id IS NOT NULL`, [job]);
  return r.rows[0] || null;
}

async function pushProgress(user, job) {
  if (!streams.get(user)?.size) return;
  const progress = await asUser(user, (c) => progressOf(c, job));
  sendEvent(user, 'progress', progress ? { ...progress, worker_running: workerRunning(user, job) }
                                       : { job_id: job, discarded: true });
}

function openEvents(req, res, user) {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  });
  res.write(': connected\n\n');
  if (!streams.has(user)) streams.set(user, new Set());
  streams.get(user).add(res);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15000);
  req.on('close', () => {
    clearInterval(keepAlive);
    streams.get(user).delete(res);
  });
}

// ------------------------------------------------------------------------------ routes

const routes = [];
function route(method, pattern, handler) {
  routes.push({ method, pattern, handler });
}

route('POST', /^\/api\/login$/, async (req, res) => {
  const { user } = await readJson(req);
  if (!USERS.includes(user)) throw new HttpError(400, `unknown user (the example has ${USERS.join(', ')})`);
  await listenFor(user);
  res.setHeader('Set-Cookie', `user=${user}; Path=/; HttpOnly; SameSite=Strict`);
  sendJson(res, 200, { user });
});

route('POST', /^\/api\/logout$/, async (req, res) => {
  res.setHeader('Set-Cookie', 'user=; Path=/; Max-Age=0');
  sendJson(res, 200, {});
});

route('GET', /^\/api\/me$/, async (req, res) => {
  const user = requireUser(req);
  await listenFor(user);
  const owner = await asUser(user, async (c) =>
    (await c.query('SELECT batchguard.current_owner() AS owner')).rows[0].owner);
  sendJson(res, 200, { user, owner });
});

route('GET', /^\/api\/events$/, async (req, res) => {
  const user = requireUser(req);
  await listenFor(user);
  openEvents(req, res, user);
});

// The resume dialog and the batch summaries.
route('GET', /^\/api\/batches$/, async (req, res) => {
  const user = requireUser(req);
  const batches = await asUser(user, async (c) => (await c.query(
    `SELECT p.*, extract(epoch FROM p.eta) AS eta_seconds
       FROM batchguard.get_incomplete_checkpoints() p`)).rows);
  const recent = await asUser(user, async (c) => (await c.query(
    `SELECT p.*, extract(epoch FROM p.eta) AS eta_seconds
       FROM batchguard.batch_summary s, batchguard.calculate_progress(s.job_id) p
      ORDER BY s.started_at DESC LIMIT 5`)).rows);
  const mark = (b) => ({ ...b, worker_running: workerRunning(user, b.job_id) });
  sendJson(res, 200, { incomplete: batches.map(mark), recent: recent.map(mark) });
});

route('POST', /^\/api\/batches$/, async (req, res) => {
  const user = requireUser(req);
  const body = await readJson(req);
  const count = Number(body.templates || 40);
  if (!Number.isInteger(count) || count < 1 || count > 10000) throw new HttpError(400, 'templates must be 1..10000');
  const job = `generate-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${crypto.randomBytes(2).toString('hex')}`;
  const items = Array.from({ length: count }, (_, i) => `template-${String(i + 1).padStart(4, '0')}`);
  // A JS array becomes a PostgreSQL text[] parameter in node-postgres.
  const progress = await asUser(user, async (c) => (await c.query(
    `SELECT p.* FROM batchguard.start_batch($1, $2::text[], metadata => $3::jsonb) p`,
    [job, items, JSON.stringify({ kind: 'generation', templates: count })])).rows[0]);
  const pid = startWorker(user, job, { failEvery: Number(body.failEvery || 0) });
  sendJson(res, 201, { job_id: job, worker_pid: pid, progress });
});

route('POST', /^\/api\/batches\/([^/]+)\/resume$/, async (req, res, [job]) => {
  const user = requireUser(req);
  const progress = await asUser(user, async (c) => (await c.query(
    'SELECT p.* FROM batchguard.resume_batch($1, retry_failed => true) p', [job])).rows[0]);
  const pid = startWorker(user, job);
  sendJson(res, 200, { job_id: job, worker_pid: pid, progress });
});

route('POST', /^\/api\/batches\/([^/]+)\/discard$/, async (req, res, [job]) => {
  const user = requireUser(req);
  if (workerRunning(user, job)) throw new HttpError(409, 'a worker is running this batch');
  const discarded = await asUser(user, async (c) => (await c.query(
    'SELECT batchguard.cleanup_checkpoint($1) AS discarded', [job])).rows[0].discarded);
  if (!discarded) throw new HttpError(404, 'no such batch');
  sendJson(res, 200, { job_id: job, discarded });
});

route('GET', /^\/api\/conversations$/, async (req, res) => {
  const user = requireUser(req);
  const rows = await asUser(user, async (c) => (await c.query(
    `SELECT c.id, c.title, c.template_id, c.job_id, c.created_at,
            (SELECT count(*) FROM webapp.messages m WHERE m.conversation_id = c.id) AS messages
       FROM webapp.conversations c ORDER BY c.id LIMIT 500`)).rows);
  sendJson(res, 200, { conversations: rows });
});

// Step 1 of the delete dialog: what a delete of these conversations would remove.
route('POST', /^\/api\/delete\/preview$/, async (req, res) => {
  const user = requireUser(req);
  const ids = idsOf(await readJson(req));
  const rows = await asUser(user, async (c) => (await c.query(
    `SELECT table_name, action, rows, estimated_bytes
       FROM batchguard.delete_preview('webapp.conversations', $1::text[])`, [ids])).rows);
  sendJson(res, 200, { ids, tables: rows });
});

// Step 2: a backup of the selected conversations (and their messages). While it runs, the
// export's progress (export_progress, read from a second connection) goes to the user's
// event stream under the request's progress id.
route('POST', /^\/api\/backup\/create$/, async (req, res) => {
  const user = requireUser(req);
  const body = await readJson(req);
  const ids = idsOf(body);
  const progressId = String(body.progressId || '');
  const backup = await asUser(user, async (c) => {
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        // export_progress shows the exports of the caller's role: read it as the user too.
        const r = await asUser(user, (p) => p.query(
          'SELECT phase, rows_written, bytes_written FROM batchguard.export_progress WHERE pid = $1', [pid]));
        if (r.rows[0]) sendEvent(user, 'export', { progressId, ...r.rows[0] });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      return (await c.query(
        `SELECT b.* FROM batchguard.export_backup('webapp.conversations', $1::text[],
                                                  label => $2) b`,
        [ids, body.label || `${ids.length} conversation(s) before delete`])).rows[0];
    } finally {
      polling = false;
      await poll.catch(() => {});
    }
  });
  sendEvent(user, 'export', { progressId, phase: 'done', rows_written: backup.total_rows,
                              bytes_written: backup.compressed_bytes });
  sendJson(res, 201, { backup });
});

// Step 3: the delete. delete_with_backup backs up exactly the rows it deletes, in the same
// transaction: if its backup fails nothing is deleted. The step-2 backup (which the user
// could download before deciding) is superseded by it and removed in the same transaction.
route('POST', /^\/api\/conversations\/delete$/, async (req, res) => {
  const user = requireUser(req);
  const body = await readJson(req);
  const ids = idsOf(body);
  const replaces = body.replacesBackup && UUID.test(body.replacesBackup) ? body.replacesBackup : null;
  const result = await asUser(user, async (c) => {
    const r = (await c.query(
      `SELECT batchguard.delete_with_backup('webapp.conversations', $1::text[],
                                            label => $2) AS result`,
      [ids, `deleted ${ids.length} conversation(s)`])).rows[0].result;
    if (replaces) await c.query('SELECT batchguard.delete_backup($1)', [replaces]);
    return r;
  });
  sendJson(res, 200, result);
});

route('GET', /^\/api\/backups$/, async (req, res) => {
  const user = requireUser(req);
  const rows = await asUser(user, async (c) => (await c.query(
    `SELECT backup_id, label, row_counts, total_rows, compressed_bytes, file_sha256,
            created_at, expires_at, legal_hold, status
       FROM batchguard.get_user_backups()`)).rows);
  sendJson(res, 200, { backups: rows });
});

route('POST', /^\/api\/backup\/([^/]+)\/restore$/, async (req, res, [id]) => {
  const user = requireUser(req);
  if (!UUID.test(id)) throw new HttpError(404, 'no such backup');
  const result = await asUser(user, async (c) => (await c.query(
    `SELECT batchguard.restore_backup($1::uuid, 'error') AS result`, [id])).rows[0].result);
  sendJson(res, 200, result);
});

// The download: the file in chunks of read_backup(id, offset, length), each chunk in a
// transaction of its own (a long download holds no transaction open), the whole checked
// against file_sha256 as it streams.
route('GET', /^\/api\/backup\/download\/([^/]+)$/, async (req, res, [id]) => {
  const user = requireUser(req);
  if (!UUID.test(id)) throw new HttpError(404, 'no such backup');
  // get_backup returns NULL for an unknown or another user's backup: as a row that is all
  // NULLs in FROM, so the WHERE keeps "not found" from looking like a backup.
  const backup = await asUser(user, async (c) => (await c.query(
    `SELECT b.backup_id, b.label, b.compressed_bytes, b.file_sha256, b.status, b.created_at
       FROM batchguard.get_backup($1::uuid) b WHERE b.backup_id IS NOT NULL`, [id])).rows[0]);
  if (!backup) throw new HttpError(404, 'no such backup');
  if (backup.status === 'expired') throw new HttpError(410, `backup ${id} has expired`);
  if (backup.status !== 'ok') throw new HttpError(503, `backup ${id} is not available here (${backup.status})`);
  const etag = `"${backup.file_sha256}"`;
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag });
    res.end();
    return;
  }
  const size = Number(backup.compressed_bytes);
  const day = new Date(backup.created_at).toISOString().slice(0, 10);
  const name = `conversations-backup-${day}-${id.slice(0, 8)}.jsonl.zst`;
  res.writeHead(200, {
    'Content-Type': 'application/zstd',
    'Content-Length': size,
    'Content-Disposition': `attachment; filename="${name}"`,
    ETag: etag,
    'Cache-Control': 'private, no-store',
  });
  const hash = crypto.createHash('sha256');
  for (let offset = 0; offset < size; offset += CHUNK_BYTES) {
    const chunk = await asUser(user, async (c) => (await c.query(
      'SELECT batchguard.read_backup($1::uuid, $2, $3) AS chunk',
      [id, offset, Math.min(CHUNK_BYTES, size - offset)])).rows[0].chunk);
    hash.update(chunk);
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  if (hash.digest('hex') !== backup.file_sha256) {
    // Headers are gone: cut the connection so the client sees an incomplete download.
    console.error(`backup ${id}: the streamed bytes do not match file_sha256`);
    res.destroy();
    return;
  }
  res.end();
});

// ------------------------------------------------------------------------------ server

const STATIC = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const file = req.method === 'GET' && STATIC[url.pathname];
  if (file) {
    const body = fs.readFileSync(path.join(__dirname, 'public', file[0]));
    res.writeHead(200, { 'Content-Type': file[1], 'Content-Length': body.length });
    res.end(body);
    return;
  }
  for (const r of routes) {
    const m = r.method === req.method && url.pathname.match(r.pattern);
    if (m) {
      await r.handler(req, res, m.slice(1).map(decodeURIComponent));
      return;
    }
  }
  throw new HttpError(404, 'not found');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    if (res.headersSent) {
      console.error(`${req.method} ${req.url}: ${e.message}`);
      res.destroy();
    } else if (e instanceof HttpError) {
      sendJson(res, e.status, { error: e.message });
    } else if (e.code && e.severity) {
      // A PostgreSQL error: the user's request was refused by the database (a quota, a
      // restore conflict...): say what it said. 42704 is an unknown or another user's id.
      sendJson(res, e.code === '42704' ? 404 : 409, pgErrorBody(e));
    } else {
      console.error(e);
      sendJson(res, 500, { error: 'internal error' });
    }
  });
});

async function main() {
  await startListener();
  server.listen(PORT, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${PORT}/`));
}

function shutdown() {
  for (const child of workers.values()) child.kill('SIGTERM');
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
