'use strict';
// The browser side: plain DOM, fetch and EventSource.

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error(data.error || `${res.status} ${res.statusText}`);
    e.status = res.status;
    e.detail = data.detail;
    e.hint = data.hint;
    throw e;
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function errorText(e) {
  return [e.message, e.detail, e.hint].filter(Boolean).join(' — ');
}

function notice(text) {
  const n = $('#notice');
  n.textContent = text;
  n.hidden = !text;
}

const STATUS = { running: 'In progress', completed: 'Completed', failed: 'Failed', paused: 'Paused',
                 cancelled: 'Cancelled' };

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(Number(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s % 60}s`;
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : '—';
}

function bytes(n) {
  n = Number(n);
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

// ------------------------------------------------------------------- batch summaries

const batches = new Map(); // job_id -> progress

function batchCard(p) {
  const pct = p.percentage === null ? 0 : Number(p.percentage);
  return el('div', { class: 'batch-card', 'data-job': p.job_id, 'data-status': p.status },
    el('div', { class: 'top' },
      el('strong', {}, p.job_id),
      el('span', { class: `badge ${p.status}` }, STATUS[p.status] || p.status)),
    el('div', { class: 'bar' }, el('div', { style: `width: ${pct}%` })),
    el('div', { class: 'top' },
      el('span', { class: 'percentage' }, p.percentage === null ? '—' : `${p.percentage}%`),
      el('span', { class: 'counts' },
        `${p.completed} completed · ${p.failed} failed · ${p.pending} pending · ${p.running} running`)),
    el('div', { class: 'meta' },
      `started ${when(p.started_at)} · estimated time remaining `,
      el('span', { class: 'eta' }, p.status === 'running' ? duration(p.eta_seconds) : '—'),
      p.worker_running ? ' · worker running' : ''));
}

function drawBatches() {
  const box = $('#batches');
  box.replaceChildren();
  const list = [...batches.values()].sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
  if (!list.length) box.append(el('p', { class: 'empty' }, 'No batches yet.'));
  for (const p of list) box.append(batchCard(p));
}

// ----------------------------------------------------------------------- resume dialog

function resumeEntry(p) {
  const pct = p.percentage === null ? 0 : Number(p.percentage);
  return el('div', { class: 'resume-batch', 'data-job': p.job_id },
    el('strong', {}, p.job_id), ' ',
    el('span', { class: `badge ${p.status}` }, STATUS[p.status] || p.status),
    el('div', { class: 'bar' }, el('div', { style: `width: ${pct}%` })),
    el('div', { class: 'stats' },
      el('span', { class: 'completed' }, `${p.completed} completed`), ' · ',
      el('span', { class: 'failed' }, `${p.failed} failed`), ' · ',
      el('span', { class: 'pending' }, `${p.pending} pending`), ` · ${p.percentage ?? 0}%`),
    Number(p.failed) > 0
      ? el('div', { class: 'failed-note' }, `${p.failed} item(s) failed: Resume retries them.`) : '',
    el('div', { class: 'meta' }, `last updated ${when(p.updated_at)}`),
    el('button', { class: 'resume', onclick: () => resume(p.job_id) }, 'Resume'), ' ',
    el('button', { class: 'discard', onclick: () => discard(p.job_id) }, 'Discard'));
}

async function showResumeDialog() {
  const { incomplete } = await api('GET', '/api/batches');
  const stopped = incomplete.filter((p) => !p.worker_running);
  const dialog = $('#resume-dialog');
  $('#resume-list').replaceChildren(...stopped.map(resumeEntry));
  if (stopped.length && !dialog.open) dialog.showModal();
  if (!stopped.length && dialog.open) dialog.close();
}

async function resume(job) {
  try {
    await api('POST', `/api/batches/${encodeURIComponent(job)}/resume`);
    $(`#resume-list [data-job="${CSS.escape(job)}"]`)?.remove();
    if (!$('#resume-list').children.length) $('#resume-dialog').close();
    notice(`Resumed ${job}.`);
  } catch (e) {
    notice(`Could not resume ${job}: ${errorText(e)}`);
  }
}

async function discard(job) {
  try {
    await api('POST', `/api/batches/${encodeURIComponent(job)}/discard`);
    batches.delete(job);
    drawBatches();
    $(`#resume-list [data-job="${CSS.escape(job)}"]`)?.remove();
    if (!$('#resume-list').children.length) $('#resume-dialog').close();
    notice(`Discarded ${job}.`);
  } catch (e) {
    notice(`Could not discard ${job}: ${errorText(e)}`);
  }
}

// ----------------------------------------------------------------- conversations, backups

async function loadConversations() {
  const { conversations } = await api('GET', '/api/conversations');
  const body = $('#conversations tbody');
  body.replaceChildren(...conversations.map((c) => el('tr', { 'data-id': c.id },
    el('td', {}, el('input', { type: 'checkbox', value: c.id, onchange: updateDeleteButton })),
    el('td', {}, c.id), el('td', {}, c.title), el('td', {}, c.messages), el('td', {}, when(c.created_at)))));
  updateDeleteButton();
}

function selectedIds() {
  return $$('#conversations tbody input:checked').map((i) => i.value);
}

function updateDeleteButton() {
  $('#delete-selected').disabled = selectedIds().length === 0;
}

async function loadBackups() {
  const { backups } = await api('GET', '/api/backups');
  $('#backups tbody').replaceChildren(...backups.map((b) => el('tr', { 'data-backup': b.backup_id },
    el('td', {}, b.label || '—'), el('td', { class: 'rows' }, b.total_rows),
    el('td', {}, bytes(b.compressed_bytes)), el('td', {}, when(b.created_at)),
    el('td', { class: 'expires' }, when(b.expires_at)), el('td', { class: 'status' }, b.status),
    el('td', {},
      el('a', { class: 'download', href: `/api/backup/download/${b.backup_id}` }, 'Download'), ' ',
      el('button', { class: 'restore', onclick: () => restore(b.backup_id) }, 'Restore')))));
}

async function restore(id) {
  const box = $('#restore-result');
  try {
    const r = await api('POST', `/api/backup/${id}/restore`);
    box.className = '';
    box.textContent = `Restored ${r.inserted} row(s) from backup ${id}.`;
    await loadConversations();
  } catch (e) {
    box.className = 'error';
    box.textContent = `Restore failed: ${errorText(e)}`;
  }
  box.hidden = false;
}

// ------------------------------------------------------------- the three-step delete dialog

const del = { ids: [], backup: null, backupFailed: null, progressId: null };

function showStep(name) {
  for (const step of ['confirm', 'backup', 'final']) {
    $(`#step-${step}`).hidden = step !== name;
    $(`.steps li[data-step="${step}"]`).classList.toggle('current', step === name);
  }
  if (name === 'final') {
    const blocked = $('#delete-blocked');
    blocked.hidden = !del.backupFailed;
    blocked.textContent = del.backupFailed
      ? `The backup failed, so nothing will be deleted: ${del.backupFailed}` : '';
    $('#confirm-delete').disabled = Boolean(del.backupFailed);
  }
}

async function openDeleteDialog() {
  Object.assign(del, { ids: selectedIds(), backup: null, backupFailed: null });
  for (const id of ['#export-progress', '#backup-error', '#backup-info', '#delete-error', '#delete-result']) {
    $(id).hidden = true;
  }
  $('#create-backup').disabled = false;
  $('#skip-backup').disabled = false;
  $('#confirm-delete').disabled = false;
  $('#delete-count').textContent = del.ids.length;
  const { tables } = await api('POST', '/api/delete/preview', { ids: del.ids });
  $('#preview-table tbody').replaceChildren(...tables.map((t) => el('tr', { 'data-table': t.table_name },
    el('td', {}, t.table_name), el('td', {}, t.action), el('td', { class: 'rows' }, t.rows),
    el('td', {}, bytes(t.estimated_bytes)))));
  showStep('confirm');
  $('#delete-dialog').showModal();
}

function onExportProgress(e) {
  if (e.progressId !== del.progressId) return;
  const box = $('#export-progress');
  box.hidden = false;
  $('.text', box).textContent = e.phase === 'done'
    ? `done: ${e.rows_written} rows, ${bytes(e.bytes_written)}`
    : `${e.phase}: ${e.rows_written} rows, ${bytes(e.bytes_written)} written`;
  if (e.phase === 'done') $('progress', box).value = $('progress', box).max = 1;
}

async function createBackup() {
  del.progressId = Math.random().toString(36).slice(2);
  $('#create-backup').disabled = true;
  $('#skip-backup').disabled = true;
  const box = $('#export-progress');
  box.hidden = false;
  $('progress', box).removeAttribute('value');
  $('.text', box).textContent = 'backing up…';
  try {
    const { backup } = await api('POST', '/api/backup/create', { ids: del.ids, progressId: del.progressId });
    del.backup = backup;
    const info = $('#backup-info');
    $('dl', info).replaceChildren(
      el('dt', {}, 'Rows'), el('dd', { class: 'rows' }, `${backup.total_rows} (${
        Object.entries(backup.row_counts).map(([t, n]) => `${t}: ${n}`).join(', ')})`),
      el('dt', {}, 'Size'), el('dd', {}, `${bytes(backup.compressed_bytes)} compressed, ${
        bytes(backup.uncompressed_bytes)} uncompressed`),
      el('dt', {}, 'SHA-256'), el('dd', { class: 'sha' }, backup.file_sha256),
      el('dt', {}, 'Kept until'), el('dd', {}, when(backup.expires_at)));
    $('#backup-download').href = `/api/backup/download/${backup.backup_id}`;
    info.hidden = false;
    $('progress', box).value = $('progress', box).max = 1;
  } catch (e) {
    del.backupFailed = errorText(e);
    box.hidden = true;
    const err = $('#backup-error');
    err.textContent = `The backup failed: ${del.backupFailed}`;
    err.hidden = false;
    $('#backup-info').hidden = true;
    // The final step says the delete is blocked.
    err.append(' ', el('button', { id: 'to-final-blocked', onclick: () => showStep('final') }, 'Continue'));
  }
}

async function confirmDelete() {
  $('#confirm-delete').disabled = true;
  const err = $('#delete-error');
  err.hidden = true;
  try {
    const r = await api('POST', '/api/conversations/delete',
                        { ids: del.ids, replacesBackup: del.backup && del.backup.backup_id });
    const b = r.backup;
    $('#delete-result').replaceChildren(
      el('p', {}, `Deleted ${r.deleted} conversation(s) (${
        Object.entries(r.tables).map(([t, v]) => `${t}: ${v.rows} ${v.action}`).join(', ')}).`),
      el('p', {}, `Backup kept until ${when(b.expires_at)}: `,
        el('a', { id: 'final-download', href: `/api/backup/download/${b.backup_id}` }, 'Download'), ' ',
        el('button', { id: 'final-restore', onclick: async () => { await restore(b.backup_id); $('#delete-dialog').close(); } },
          'Restore'), ' ',
        el('button', { id: 'final-close', onclick: () => $('#delete-dialog').close() }, 'Close')));
    $('#delete-result').hidden = false;
    await Promise.all([loadConversations(), loadBackups()]);
  } catch (e) {
    err.textContent = `Nothing was deleted: ${errorText(e)}`;
    err.hidden = false;
  }
}

// ---------------------------------------------------------------------------- start

function openEvents() {
  const events = new EventSource('/api/events');
  events.addEventListener('progress', (m) => {
    const p = JSON.parse(m.data);
    if (p.discarded) batches.delete(p.job_id);
    else batches.set(p.job_id, p);
    drawBatches();
    if (Number(p.completed) > 0) loadConversations().catch(() => {});
  });
  events.addEventListener('export', (m) => onExportProgress(JSON.parse(m.data)));
}

async function startApp(user, owner) {
  $('#sign-in').hidden = true;
  $('#app').hidden = false;
  $('#sign-out').hidden = false;
  $('#who').textContent = `${user} (owner ${owner})`;
  openEvents();
  const { recent } = await api('GET', '/api/batches');
  for (const p of recent) batches.set(p.job_id, p);
  drawBatches();
  await Promise.all([loadConversations(), loadBackups(), showResumeDialog()]);
  document.body.dataset.ready = 'true';
}

async function main() {
  for (const b of $$('#sign-in button')) {
    b.addEventListener('click', async () => {
      await api('POST', '/api/login', { user: b.dataset.user });
      location.reload();
    });
  }
  $('#sign-out').addEventListener('click', async () => {
    await api('POST', '/api/logout');
    location.reload();
  });
  $('#start-generation').addEventListener('click', async () => {
    try {
      const r = await api('POST', '/api/batches', {
        templates: Number($('#templates').value), failEvery: $('#fail-some').checked ? 7 : 0 });
      batches.set(r.job_id, { ...r.progress, worker_running: true });
      drawBatches();
      notice(`Started ${r.job_id}.`);
    } catch (e) {
      notice(`Could not start: ${errorText(e)}`);
    }
  });
  $('#resume-close').addEventListener('click', () => $('#resume-dialog').close());
  $('#delete-selected').addEventListener('click', () => openDeleteDialog().catch((e) => notice(errorText(e))));
  $('#to-backup').addEventListener('click', () => showStep('backup'));
  $('#create-backup').addEventListener('click', createBackup);
  $('#skip-backup').addEventListener('click', () => showStep('final'));
  $('#to-final').addEventListener('click', () => showStep('final'));
  $('#confirm-delete').addEventListener('click', confirmDelete);
  for (const b of $$('#delete-dialog .cancel')) b.addEventListener('click', () => $('#delete-dialog').close());

  try {
    const me = await api('GET', '/api/me');
    await startApp(me.user, me.owner);
  } catch (e) {
    if (e.status !== 401) notice(errorText(e));
    $('#sign-in').hidden = false;
    document.body.dataset.ready = 'true';
  }
}

main();
