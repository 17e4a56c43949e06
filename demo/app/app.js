/**
 * Field Log -- the bgsync demo app. Volunteers record activities and edit shared notes;
 * every change goes into bgsync's outbox (SyncClient.enqueue) and the service worker
 * sends it when the API can be reached. The right-hand column shows what bgsync is
 * doing: status, the outbox, an attempt timeline, dead letters, conflicts, the server's
 * request log, the server controls and the worker's settings.
 *
 * What this page shows is what bgsync reports; where a call is missing from the bgsync
 * build being served, the panel says so instead of inventing data.
 */
import { SyncClient } from '/bgsync/web/index.js';
import { ago, clock, duration, fill, h, pathOf, statusText } from './dom.js';
import { renderTimeline } from './timeline.js';

const $ = (id) => document.getElementById(id);
const QUEUE = 'default';
const STORE_KEY = 'fieldlog';
const MAX_LOCAL_ATTEMPTS = 400;

// ---------------------------------------------------------------------------------------
// Local state (this device): settings, my activities, cached notes, attempts seen.

const DEFAULT_SETTINGS = Object.freeze({
  backoff: 'exponential',
  initialMs: 3_000,
  maxMs: 60_000,
  jitter: 'equal',
  maxAttempts: 8,
  conflict: 'manual',
  storage: 'indexeddb',
});

function load(name, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(`${STORE_KEY}.${name}`));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}
function save(name, value) {
  localStorage.setItem(`${STORE_KEY}.${name}`, JSON.stringify(value));
}

const state = {
  settings: { ...DEFAULT_SETTINGS, ...load('settings', {}) },
  activities: load('activities', []), // [{id, itemId, key, kind, hours, place, volunteer, at}]
  notes: load('notes', {}), // id -> {doc, etag, local?: doc, itemId?}
  localAttempts: load('attempts', []), // [{id, at, status, state}] from progress events
  lastSyncedAt: load('lastSyncedAt', null),
  status: null,
  items: [],
  engineAttempts: null, // null = the engine's attempt log is not available
  dead: null, // null = unavailable
  conflicts: null,
  progress: null, // {done, total, at}
  faults: null,
  log: [],
  logSeq: 0,
  serverActivities: null,
  unavailable: new Map(), // optional call -> why it gave no data
};

// `?testClock=1` on the page (tests only): the worker lets the page move its clock, so the
// e2e walkthrough can step past a backoff instead of waiting for it. It is part of the
// worker's URL, so a page opened without it gets a worker without the test clock.
const TEST_CLOCK = new URLSearchParams(location.search).get('testClock') === '1';

function swUrl(settings) {
  const q = new URLSearchParams({
    backoff: settings.backoff,
    initialMs: String(settings.initialMs),
    maxMs: String(settings.maxMs),
    jitter: settings.jitter,
    maxAttempts: String(settings.maxAttempts),
    conflict: settings.conflict,
    storage: settings.storage,
  });
  if (TEST_CLOCK) q.set('testClock', '1');
  return `/sw.js?${q}`;
}

// ---------------------------------------------------------------------------------------
// Start: register the worker, connect the client.

let client;

async function start() {
  if (!('serviceWorker' in navigator)) {
    setStatus('error', 'This browser has no service workers', 'Open the demo in Chromium, Chrome or Edge.');
    return;
  }
  const hadController = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // A new worker (new settings) took over: reload so the page talks to it.
    if (hadController || sessionStorage.getItem(`${STORE_KEY}.reloading`)) {
      sessionStorage.removeItem(`${STORE_KEY}.reloading`);
      location.reload();
    }
  });
  await navigator.serviceWorker.register(swUrl(state.settings), { type: 'module', scope: '/' });
  client = new SyncClient();
  for (const type of ['progress', 'status', 'completed', 'failed', 'conflict', 'dead']) {
    client.addEventListener(type, (e) => onEvent(type, e.detail));
  }
  await client.ready();
  window.fieldLog = { client, state, refresh }; // for DevTools and the e2e walkthrough
  if (TEST_CLOCK) window.fieldLog.setClockOffset = (offsetMs) => client._request('testClock', { offsetMs });
  $('sync-now').disabled = false;
  await refresh();
  document.body.dataset.ready = 'true';
}

function onEvent(type, detail) {
  if (type === 'progress') {
    state.progress = { done: detail.done, total: detail.total, at: Date.now() };
    if (detail.id !== undefined) {
      state.localAttempts.push({ id: detail.id, at: Date.now(), status: detail.status, state: detail.state });
      if (state.localAttempts.length > MAX_LOCAL_ATTEMPTS) state.localAttempts.splice(0, state.localAttempts.length - MAX_LOCAL_ATTEMPTS);
      save('attempts', state.localAttempts);
    }
  }
  if (type === 'progress') setTimeout(pollServer, 0); // show the server's side of that attempt
  if (type === 'status') state.status = detail;
  if (type === 'completed' || type === 'failed') state.progress = null;
  scheduleRefresh();
}

// ---------------------------------------------------------------------------------------
// Refresh: ask the worker (and the server) for the current picture, then draw it.

let refreshTimer = null;
let refreshing = null;

// Set while a new worker version (new settings) takes over. The page stays quiet then: every
// request it makes (a status read, a poll of the server log) is an event for the OLD worker,
// and the browser activates the new version only once the old one has no events in flight.
let switchingWorker = false;

function scheduleRefresh(delayMs = 80) {
  if (refreshTimer || switchingWorker) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refresh().catch((err) => console.warn('refresh failed', err));
  }, delayMs);
}

/**
 * Calls an optional SyncClient method; null when the build lacks it or the call failed,
 * and state.unavailable says why (the panel shows that instead of data).
 */
async function optional(name, ...args) {
  if (typeof client[name] !== 'function') {
    state.unavailable.set(name, `Not available in this bgsync build (SyncClient has no ${name}()).`);
    return null;
  }
  try {
    const value = await client[name](...args);
    state.unavailable.delete(name);
    return value;
  } catch (err) {
    state.unavailable.set(
      name,
      err?.code === 'bad-message'
        ? `Not available in this bgsync build (${err.detail || err.message}).`
        : `Could not be read: ${err?.message ?? err}`,
    );
    return null;
  }
}

let refreshAgain = false;

async function refresh() {
  if (!client) return;
  if (refreshing) {
    refreshAgain = true; // something changed while reading: read once more afterwards
    return refreshing;
  }
  refreshing = (async () => {
    const [status, items, dead, conflicts, attempts] = await Promise.all([
      client.status(QUEUE),
      client.items({ queue: QUEUE, limit: 200 }),
      optional('deadLetters', QUEUE),
      optional('conflicts', QUEUE),
      optional('attempts', { limit: 500 }),
    ]);
    state.status = status;
    state.items = items;
    state.dead = dead;
    state.conflicts = conflicts;
    state.engineAttempts = attempts;
    // "Last synced" is when a change last reached the server: the newest delivered item.
    // Not the end of the last run: a run that found nothing to send, or whose request was
    // refused (a dead letter, later discarded), synced nothing.
    const delivered = items.filter((i) => i.state === 'done' && i.updatedAt).map((i) => i.updatedAt);
    if (delivered.length) {
      state.lastSyncedAt = Math.max(state.lastSyncedAt ?? 0, ...delivered);
      save('lastSyncedAt', state.lastSyncedAt);
    }
    scheduleWake(status);
    renderAll();
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
    if (refreshAgain) {
      refreshAgain = false;
      scheduleRefresh(0);
    }
  }
}

// While a page is open it wakes the worker when the next retry is due, so the demo
// does not wait for the browser's own (minutes-long) Background Sync retry.
// At most one wake a second, so a due time that stays in the past cannot spin.
const MIN_WAKE_GAP_MS = 1_000;
let wakeTimer = null;
let wakeFireAt = 0;
let lastWake = 0;
function scheduleWake(status) {
  const at = status.nextAttemptAt;
  if (!at || status.state === 'running' || switchingWorker) return;
  const fireAt = Math.max(at, lastWake + MIN_WAKE_GAP_MS, Date.now()) + 150;
  // Keep a wake that comes as early or earlier. (Replacing it on every status refresh
  // starved it: while items are due, nextAttemptAt is "now" and moves with each refresh,
  // so a timer reset each time never fired.)
  if (wakeTimer && wakeFireAt <= fireAt) return;
  clearTimeout(wakeTimer);
  wakeFireAt = fireAt;
  wakeTimer = setTimeout(() => {
    wakeTimer = null;
    lastWake = Date.now();
    if (document.visibilityState !== 'hidden') client.syncNow(QUEUE, { trigger: 'timer' }).catch(() => undefined).finally(() => scheduleRefresh());
  }, fireAt - Date.now());
}

function renderAll() {
  renderStatus();
  renderQueue();
  renderTimelinePanel();
  renderDead();
  renderConflicts();
  renderActivities();
  renderNotes();
}

// ---------------------------------------------------------------------------------------
// Status bar

function setStatus(kind, text, sub = '') {
  $('status').dataset.state = kind;
  $('status-text').textContent = text;
  $('status-sub').textContent = sub;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function renderStatus() {
  const st = state.status;
  if (!st) return;
  const c = st.counts;
  const remaining = c.pending + c.waiting + c.inflight;
  $('status-pending').textContent = String(remaining);
  $('status-last').textContent = state.lastSyncedAt ? `${clock(state.lastSyncedAt)} (${ago(state.lastSyncedAt)})` : 'never';
  const attention = [];
  if (c.conflict) attention.push(plural(c.conflict, 'conflict'));
  if (c.dead) attention.push(plural(c.dead, 'dead letter'));
  if (c.auth) attention.push(`${c.auth} waiting for sign-in`);
  const p = state.progress;
  if (st.state === 'running' || (p && Date.now() - p.at < 1_500 && remaining > 0)) {
    const total = Math.max(p?.total ?? remaining, 1);
    setStatus('running', `Syncing ${Math.min(p?.done ?? 0, total)} of ${total}…`, 'Sending the outbox to the server');
  } else if (remaining > 0) {
    const next = st.nextAttemptAt ? Math.max(0, st.nextAttemptAt - Date.now()) : null;
    const failing = state.items.filter((i) => i.state === 'waiting' && i.lastStatus !== null && i.lastStatus !== undefined);
    const lastStatus = failing.sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0))[0]?.lastStatus;
    const why = lastStatus === undefined
      ? 'Queued on this device'
      : lastStatus === 0
        ? 'The server could not be reached'
        : `The server answered ${lastStatus}`;
    setStatus(
      'waiting',
      `${plural(remaining, 'change')} waiting to sync`,
      `${why}${next !== null ? ` · next try in ${duration(next)}` : ''}` + (navigator.onLine ? '' : ' · this device is offline'),
    );
  } else if (attention.length) {
    const one = attention.length === 1 && /^1 /.test(attention[0]);
    setStatus('attention', `${attention.join(' and ')} need${one ? 's' : ''} you`, 'Nothing else is waiting · see the panels below');
  } else if (c.done > 0 || state.lastSyncedAt) {
    setStatus('synced', 'All changes synced', `${plural(c.done, 'request')} delivered`);
  } else {
    setStatus('idle', 'Ready', 'Nothing to sync yet: record an activity');
  }
  const qc = $('queue-counts');
  fill(qc, ...['pending', 'inflight', 'waiting', 'done', 'conflict', 'dead'].filter((k) => c[k]).map((k) => h('span', { class: `badge s-${k}` }, `${c[k]} ${k}`)));
}

$('sync-now').addEventListener('click', async () => {
  const btn = $('sync-now');
  btn.disabled = true;
  try {
    const r = await client.syncNow(QUEUE);
    await refresh();
    const st = state.status;
    if (r.remaining > 0 && st?.nextAttemptAt && st.nextAttemptAt > Date.now()) {
      $('status-sub').textContent = `Tried what was due; ${plural(r.remaining, 'change')} still wait for their retry time (next in ${duration(st.nextAttemptAt - Date.now())})`;
    }
  } catch (err) {
    setStatus('error', 'Sync failed to start', err.message);
  } finally {
    btn.disabled = false;
  }
});

// ---------------------------------------------------------------------------------------
// Outbox (queue inspector)

function renderQueue() {
  const body = $('queue-body');
  const rows = [...state.items].sort((a, b) => b.id - a.id).slice(0, 25);
  if (rows.length === 0) {
    fill(body, h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'The outbox is empty.')));
    return;
  }
  fill(
    body,
    rows.map((i) =>
      h(
        'tr',
        { dataset: { id: i.id, state: i.state } },
        h('td', { class: 'mono' }, i.id),
        h('td', {}, h('span', { class: 'method' }, i.method), ' ', h('span', { class: 'mono' }, pathOf(i.url))),
        h('td', {}, h('span', { class: `badge s-${i.state}` }, i.state)),
        h('td', {}, h('span', { class: `prio ${i.priority}` }, i.priority)),
        h('td', { class: 'mono dim' }, i.entity ?? '–'),
        h('td', { class: 'num' }, i.attempts),
        h('td', { class: 'num mono' }, i.lastStatus === null || i.lastStatus === undefined ? '–' : statusText(i.lastStatus)),
        h('td', { class: 'countdown' }, countdown(i)),
      ),
    ),
  );
}

function countdown(i) {
  if (i.state === 'waiting' && i.dueAt) {
    const left = i.dueAt - Date.now();
    return left > 0 ? `in ${duration(left)}` : 'due now';
  }
  if (i.state === 'pending') return 'ready';
  if (i.state === 'inflight') return 'sending…';
  if (i.state === 'done') return i.updatedAt ? `sent ${clock(i.updatedAt)}` : 'sent';
  if (i.state === 'dead') return i.reason ?? 'gave up';
  if (i.state === 'conflict') return 'needs you';
  return '–';
}

// ---------------------------------------------------------------------------------------
// Timeline

function renderTimelinePanel() {
  const fromEngine = Array.isArray(state.engineAttempts);
  const attempts = fromEngine ? state.engineAttempts : state.localAttempts;
  $('timeline-source').textContent = fromEngine
    ? "From the engine's attempt log. Each row is one request, each dot an attempt; the gaps are the backoff."
    : 'Each row is one request, each dot an attempt (as reported to this page); the gaps are the backoff.';
  const drawn = renderTimeline($('timeline'), { items: state.items, attempts, now: Date.now() });
  if (!drawn) fill($('timeline'), h('p', { class: 'empty' }, 'No attempts yet.'));
}

// ---------------------------------------------------------------------------------------
// Dead letters

function renderDead() {
  const list = $('dead');
  if (state.dead === null) {
    fill(list, h('li', { class: 'unavailable' }, state.unavailable.get('deadLetters') ?? 'Not available.'));
    return;
  }
  if (state.dead.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'None.'));
    return;
  }
  fill(
    list,
    state.dead.map((d) =>
      h(
        'li',
        { class: 'row', dataset: { id: d.id } },
        h('div', { class: 'row-main' },
          h('span', { class: 'method' }, d.method), ' ', h('span', { class: 'mono' }, pathOf(d.url)),
          h('div', { class: 'row-sub' }, `#${d.id} · ${d.reason ?? 'rejected'} · last answer ${statusText(d.lastStatus)} · ${plural(d.attempts ?? 0, 'try', 'tries')}`)),
        h('div', { class: 'row-actions' },
          h('button', { class: 'btn small', type: 'button', onclick: () => act(() => client.retryDead(d.id)) }, 'Retry'),
          h('button', { class: 'btn small danger-outline', type: 'button', onclick: () => act(() => discardDead(d.id)) }, 'Discard')),
      ),
    ),
  );
}

/**
 * Discards a dead letter. The engine forgets the item, so what this device showed for it
 * (an activity "in the outbox", a note's unsent edit) must be settled here: it will
 * never reach the server.
 */
async function discardDead(id) {
  await client.discardDead(id);
  for (const a of state.activities) if (a.itemId === id) a.discarded = true;
  save('activities', state.activities);
  for (const n of Object.values(state.notes)) {
    if (n.itemId !== id) continue;
    delete n.local; // back to the server's copy
    delete n.itemId;
  }
  save('notes', state.notes);
}

async function act(fn) {
  try {
    await fn();
  } catch (err) {
    alert(err.message);
  }
  await refresh();
}

// ---------------------------------------------------------------------------------------
// Conflicts: side by side, field by field

function renderConflicts() {
  const box = $('conflicts');
  if (state.conflicts === null) {
    fill(box, h('p', { class: 'unavailable' }, state.unavailable.get('conflicts') ?? 'Not available.'));
    return;
  }
  const open = state.conflicts.filter((c) => c.state === 'open' || c.state === undefined);
  if (open.length === 0) {
    fill(box, h('p', { class: 'empty' }, 'None.'));
    return;
  }
  fill(box, open.map(conflictView));
}

function conflictView(c) {
  const hasBase = !!c.base && typeof asObject(c.base) === 'object' && Object.keys(asObject(c.base)).length > 0;
  const base = asObject(c.base);
  const local = asObject(c.local);
  const remote = asObject(c.remote);
  const fields = [...new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)])].filter((f) => f !== 'updatedAt' && f !== 'id');
  const cell = (v, cls) => h('td', { class: cls }, v === undefined ? h('span', { class: 'dim' }, '(none)') : typeof v === 'string' ? v : JSON.stringify(v));
  return h(
    'div',
    { class: 'conflict', dataset: { id: c.id } },
    h('div', { class: 'conflict-head' }, h('strong', {}, c.entity ?? pathOf(c.url)), ` · ${c.method} ${pathOf(c.url)} · server answered ${c.status}`),
    h('table', { class: 'diff' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Yours'), h('th', {}, 'On the server'))),
      h('tbody', {}, fields.map((f) => {
        // With the base document, a side "changed" a field when it differs from the base;
        // without it, all that can be said is where the two sides differ.
        const differ = !same(local[f], remote[f]);
        const mine = hasBase ? !same(local[f], base[f]) : differ;
        const theirs = hasBase ? !same(remote[f], base[f]) : differ;
        const clash = mine && theirs && differ;
        return h('tr', { class: clash ? 'clash' : '' },
          h('th', {}, f),
          cell(local[f], mine ? 'changed' : ''),
          cell(remote[f], theirs ? 'changed' : ''));
      }))),
    h('div', { class: 'row-actions' },
      h('button', { class: 'btn small primary', type: 'button', onclick: () => act(() => client.resolveConflict(c.id, { keep: 'local' })) }, 'Keep mine'),
      h('button', { class: 'btn small', type: 'button', onclick: () => act(() => client.resolveConflict(c.id, { keep: 'remote' })) }, 'Keep theirs'),
      c.merged && typeof c.merged === 'object'
        ? h('button', { class: 'btn small', type: 'button', onclick: () => act(() => client.resolveConflict(c.id, { document: c.merged })) }, 'Use merged')
        : null),
  );
}

function asObject(v) {
  if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  if (typeof v === 'string') {
    try {
      const o = JSON.parse(v);
      return o && typeof o === 'object' ? o : {};
    } catch {
      return {};
    }
  }
  return {};
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---------------------------------------------------------------------------------------
// Record an activity

const form = $('activity-form');
form.volunteer.value = load('volunteer', '');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const fd = new FormData(form);
  const activity = {
    id: crypto.randomUUID(),
    volunteer: String(fd.get('volunteer')).trim(),
    kind: String(fd.get('kind')),
    place: String(fd.get('place')).trim(),
    hours: Number(fd.get('hours')),
    notes: String(fd.get('notes')).trim(),
    recordedAt: new Date().toISOString(),
  };
  save('volunteer', activity.volunteer);
  const feedback = $('activity-feedback');
  try {
    const { id, key } = await client.enqueue({
      url: '/api/activities',
      method: 'POST',
      body: activity,
      queue: QUEUE,
      priority: String(fd.get('priority')),
    });
    state.activities.unshift({ ...activity, itemId: id, key });
    state.activities = state.activities.slice(0, 50);
    save('activities', state.activities);
    feedback.textContent = `Saved on this device (outbox #${id}).`;
    feedback.className = 'feedback ok';
    form.place.value = '';
    form.notes.value = '';
  } catch (err) {
    feedback.textContent = `Not saved: ${err.message}`;
    feedback.className = 'feedback error';
  }
  await refresh();
});

function itemState(itemId) {
  return state.items.find((i) => i.id === itemId)?.state ?? null;
}

const STATE_WORDS = {
  pending: 'in the outbox',
  inflight: 'sending…',
  waiting: 'waiting to retry',
  done: 'synced',
  dead: 'refused by the server',
  conflict: 'conflict',
  auth: 'needs sign-in',
  discarded: 'discarded',
};

function renderActivities() {
  const list = $('my-activities');
  if (state.activities.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'Nothing recorded yet.'));
    return;
  }
  fill(
    list,
    state.activities.slice(0, 8).map((a) => {
      const st = a.discarded
        ? 'discarded'
        : itemState(a.itemId) ?? (state.serverActivities?.some((s) => s.id === a.id) ? 'done' : 'pending');
      return h(
        'li',
        { class: 'row', dataset: { state: st } },
        h('div', { class: 'row-main' },
          h('strong', {}, a.kind), a.place ? ` · ${a.place}` : '', ` · ${a.hours} h`,
          h('div', { class: 'row-sub' }, `${a.volunteer} · ${clock(Date.parse(a.recordedAt))}${a.notes ? ` · ${a.notes}` : ''}`)),
        h('span', { class: `badge s-${st}` }, STATE_WORDS[st] ?? st),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------
// Shared notes: fetched with their ETags when the API answers, edited offline

async function fetchNotes() {
  try {
    const res = await fetch('/api/notes', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const list = await res.json();
    await Promise.all(
      list.map(async (n) => {
        const one = await fetch(`/api/notes/${encodeURIComponent(n.id)}`, { cache: 'no-store' });
        if (!one.ok) return;
        const doc = await one.json();
        const cur = state.notes[n.id];
        // Keep an unsynced local edit; refresh the server copy it is based on.
        state.notes[n.id] = { ...cur, doc, etag: one.headers.get('etag') };
        if (cur?.local && cur.itemId && itemState(cur.itemId) === 'done') delete state.notes[n.id].local;
      }),
    );
    // Keep the server's order (the fetches above finish in any order).
    state.notes = Object.fromEntries(list.filter((n) => state.notes[n.id]).map((n) => [n.id, state.notes[n.id]]));
    save('notes', state.notes);
    state.notesOffline = false;
  } catch {
    state.notesOffline = true;
  }
  renderNotes();
  renderEditSelect();
}

let editing = null; // note id being edited

function renderNotes({ force = false } = {}) {
  const box = $('notes');
  if (editing && !force) return; // do not disturb typing
  const ids = Object.keys(state.notes);
  if (ids.length === 0) {
    fill(box, h('p', { class: 'empty' }, state.notesOffline ? 'The server cannot be reached and no notes are cached yet.' : 'Loading notes…'));
    return;
  }
  fill(
    box,
    state.notesOffline ? h('p', { class: 'hint' }, 'Offline copy: the server cannot be reached right now.') : null,
    ids.map((id) => {
      const n = state.notes[id];
      const shown = n.local ?? n.doc;
      const st = n.itemId ? itemState(n.itemId) : null;
      const unsynced = n.local && st !== 'done';
      if (editing === id) {
        return h('form', { class: 'note editing', dataset: { id }, onsubmit: (e) => saveNote(e, id) },
          h('input', { name: 'title', value: shown.title ?? '', maxlength: 80, 'aria-label': 'Title' }),
          h('textarea', { name: 'text', rows: 4, 'aria-label': 'Text' }, shown.text ?? ''),
          h('div', { class: 'row-actions' },
            h('button', { class: 'btn small primary', type: 'submit' }, 'Save'),
            h('button', { class: 'btn small', type: 'button', onclick: () => { editing = null; renderNotes({ force: true }); } }, 'Cancel'),
            h('span', { class: 'dim' }, `editing version ${n.etag ?? '?'}`)));
      }
      return h('div', { class: 'note', dataset: { id } },
        h('div', { class: 'note-head' },
          h('strong', {}, shown.title ?? id),
          h('span', { class: 'dim mono' }, n.etag ?? ''),
          unsynced ? h('span', { class: `badge s-${st ?? 'pending'}` }, STATE_WORDS[st] ?? 'in the outbox') : null,
          h('button', { class: 'btn small', type: 'button', onclick: () => { editing = id; renderNotes({ force: true }); box.querySelector('textarea')?.focus(); } }, 'Edit')),
        h('p', { class: 'note-text' }, shown.text ?? ''),
        shown.editedBy ? h('p', { class: 'row-sub' }, `last edited by ${shown.editedBy}`) : null);
    }),
  );
}

async function saveNote(e, id) {
  e.preventDefault();
  const n = state.notes[id];
  const formEl = e.target;
  // updatedAt is the server's to set: leave it out of both sides, or every merge would
  // find it "changed" by both.
  const { updatedAt: _serverTime, ...base } = n.doc;
  const next = { ...(n.local ?? base), title: formEl.elements.namedItem('title').value, text: formEl.elements.namedItem('text').value, editedBy: form.volunteer.value || 'a volunteer' };
  delete next.updatedAt;
  const request = {
    url: `/api/notes/${encodeURIComponent(id)}`,
    method: 'PUT',
    headers: n.etag ? { 'if-match': n.etag } : {},
    body: next,
    queue: QUEUE,
    priority: 'high',
    entity: `note:${id}`,
    baseVersion: n.etag ?? undefined,
    baseDocument: base,
  };
  try {
    const { id: itemId } = await client.enqueue(request);
    state.notes[id] = { ...n, local: next, itemId };
    save('notes', state.notes);
    editing = null;
  } catch (err) {
    alert(`Not saved: ${err.message}`);
  }
  renderNotes({ force: true });
  await refresh();
}

function renderEditSelect() {
  const sel = $('edit-note');
  const current = sel.value;
  fill(sel, Object.entries(state.notes).map(([id, n]) => h('option', { value: id }, n.doc?.title ?? id)));
  if (current && state.notes[current]) sel.value = current;
}

// ---------------------------------------------------------------------------------------
// Server controls (/__control on the demo server)

async function control(path, body) {
  const res = await fetch(`/__control/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error ?? `HTTP ${res.status}`);
  return json;
}

async function setFaults(patch) {
  state.faults = await control('faults', patch);
  renderFaults();
}

function renderFaults() {
  const f = state.faults;
  if (!f) return;
  $('api-up').setAttribute('aria-pressed', String(!f.down));
  $('api-down').setAttribute('aria-pressed', String(f.down));
  $('latency').value = String([0, 300, 1500, 5000].includes(f.latencyMs) ? f.latencyMs : 0);
  $('fault-503').setAttribute('aria-pressed', String(f.status === 503));
  $('fault-422').setAttribute('aria-pressed', String(f.status === 422));
  $('failure-rate').value = String(Math.round(f.failureRate * 100));
  $('failure-rate-out').textContent = `${Math.round(f.failureRate * 100)}%`;
  const parts = [];
  if (f.down) parts.push('API down: every connection is reset');
  if (f.status) parts.push(`every request answered ${f.status}${f.retryAfter != null ? ` with Retry-After: ${f.retryAfter}` : ''}`);
  if (f.failureRate) parts.push(`${Math.round(f.failureRate * 100)}% of requests fail with ${f.failureStatus}`);
  if (f.latencyMs) parts.push(`${f.latencyMs} ms added to every answer`);
  const summary = $('faults-summary');
  summary.textContent = parts.length ? `Now: ${parts.join(' · ')}.` : 'Now: the API is healthy.';
  summary.dataset.healthy = String(parts.length === 0);
  document.body.dataset.api = f.down ? 'down' : 'up';
}

$('api-up').addEventListener('click', () => setFaults({ down: false }));
$('api-down').addEventListener('click', () => setFaults({ down: true }));
$('latency').addEventListener('change', (e) => setFaults({ latencyMs: Number(e.target.value) }));
$('fault-503').addEventListener('click', () =>
  setFaults(state.faults?.status === 503 ? { status: 0, retryAfter: null } : { status: 503, retryAfter: '10' }));
$('fault-422').addEventListener('click', () =>
  setFaults(state.faults?.status === 422 ? { status: 0 } : { status: 422, retryAfter: null }));
$('failure-rate').addEventListener('input', (e) => ($('failure-rate-out').textContent = `${e.target.value}%`));
$('failure-rate').addEventListener('change', (e) => setFaults({ failureRate: Number(e.target.value) / 100, failureStatus: 503 }));
$('edit-remote').addEventListener('click', async () => {
  const id = $('edit-note').value;
  if (!id) return;
  const stamp = clock(Date.now());
  try {
    await control('edit', { collection: 'notes', id, patch: { text: `${state.notes[id]?.doc?.text ?? ''}\n(Coordinator, ${stamp}) Changed on the server.` } });
    $('faults-summary').textContent = `Someone else edited "${state.notes[id]?.doc?.title ?? id}" on the server; its version moved on. An edit of yours based on the old version will now conflict.`;
  } catch (err) {
    alert(err.message);
  }
});
$('server-reset').addEventListener('click', async () => {
  await control('reset', {});
  state.log = [];
  state.logSeq = 0;
  state.faults = await control('faults');
  renderFaults();
  renderLog();
  await fetchNotes();
});

// ---------------------------------------------------------------------------------------
// Server request log (polled) and what the server holds

let polling = false;

async function pollServer() {
  if (polling || switchingWorker) return;
  polling = true;
  try {
    const res = await fetch(`/__control/log?since=${state.logSeq}`, { cache: 'no-store' });
    let fresh = await res.json();
    if (Number(res.headers.get('x-log-length') ?? Infinity) < state.logSeq) {
      // The log restarted (a reset, or a restarted server): read it from the start.
      state.log = [];
      state.logSeq = 0;
      fresh = await control('log');
      renderLog();
    }
    if (fresh.length) {
      state.log = [...state.log, ...fresh].slice(-200);
      state.logSeq = fresh[fresh.length - 1].seq;
      renderLog();
      if (fresh.some((e) => e.applied)) {
        fetchNotes();
        fetchServerActivities();
      }
    }
    if (!state.faults) {
      state.faults = await control('faults');
      renderFaults();
    }
  } catch {
    // The demo server itself is gone; the app keeps working offline.
  } finally {
    polling = false;
  }
}

async function fetchServerActivities() {
  try {
    const res = await fetch('/api/activities', { cache: 'no-store' });
    if (!res.ok) throw new Error(String(res.status));
    state.serverActivities = await res.json();
  } catch {
    // API down: keep the last known list
  }
  const n = state.serverActivities?.length;
  $('server-holds').textContent = n === undefined ? '' : `server holds ${plural(n, 'activity', 'activities')}`;
  renderActivities();
}

function renderLog() {
  const body = $('log-body');
  // The page's own reads (GET notes, activities) would drown the outbox's writes.
  const writes = state.log.filter((e) => e.method !== 'GET').reverse();
  if (writes.length === 0) {
    fill(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No writes yet.')));
    return;
  }
  fill(
    body,
    writes.slice(0, 8).map((e) =>
      h('tr', { dataset: { status: e.status } },
        h('td', { class: 'mono dim' }, clock(e.at)),
        h('td', {}, h('span', { class: 'method' }, e.method), ' ', h('span', { class: 'mono' }, e.path)),
        h('td', {}, h('span', { class: `http s${String(e.status)[0]}` }, e.status === 0 ? 'reset' : e.status)),
        h('td', { class: 'mono dim', title: e.key ?? '' }, e.key ? `…${e.key.slice(-14)}` : '–'),
        h('td', {}, e.applied ? h('span', { class: 'applied' }, '✓ applied') : e.key && e.status >= 200 && e.status < 300 ? 'replayed' : '–'))),
  );
}

// ---------------------------------------------------------------------------------------
// Settings

const settingsForm = $('settings');
function showSettings() {
  const st = state.settings;
  settingsForm.backoff.value = st.backoff;
  settingsForm.initialS.value = String(st.initialMs / 1000);
  settingsForm.maxS.value = String(st.maxMs / 1000);
  settingsForm.jitter.value = st.jitter;
  settingsForm.maxAttempts.value = String(st.maxAttempts);
  settingsForm.conflict.value = st.conflict;
  settingsForm.storage.value = st.storage;
}
settingsForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const next = {
    backoff: settingsForm.backoff.value,
    initialMs: Math.round(Number(settingsForm.initialS.value) * 1000),
    maxMs: Math.round(Number(settingsForm.maxS.value) * 1000),
    jitter: settingsForm.jitter.value,
    maxAttempts: Number(settingsForm.maxAttempts.value),
    conflict: settingsForm.conflict.value,
    storage: settingsForm.storage.value,
  };
  const storageChanged = next.storage !== state.settings.storage;
  state.settings = next;
  save('settings', next);
  $('settings-feedback').textContent = storageChanged
    ? 'Restarting the worker… (another storage backend has its own, separate outbox)'
    : 'Restarting the worker with the new settings…';
  const url = new URL(swUrl(next), location.href).href;
  if (navigator.serviceWorker.controller?.scriptURL === url) {
    $('settings-feedback').textContent = 'Nothing changed.';
    return; // the same version: no update would come, so no reload either
  }
  sessionStorage.setItem(`${STORE_KEY}.reloading`, '1');
  switchingWorker = true;
  clearTimeout(wakeTimer);
  clearTimeout(refreshTimer);
  refreshTimer = null;
  try {
    await navigator.serviceWorker.register(url, { type: 'module', scope: '/' });
  } catch (err) {
    switchingWorker = false;
    sessionStorage.removeItem(`${STORE_KEY}.reloading`);
    $('settings-feedback').textContent = `The new worker could not be installed: ${err?.message ?? err}`;
  }
});

// ---------------------------------------------------------------------------------------
// Clock: countdowns tick, the server log is polled, the picture is refreshed.

function tick() {
  renderStatus();
  for (const row of $('queue-body').querySelectorAll('tr[data-state="waiting"]')) {
    const item = state.items.find((i) => String(i.id) === row.dataset.id);
    if (item) row.querySelector('.countdown').textContent = countdown(item);
  }
}

showSettings();
renderActivities();
renderNotes();
setInterval(tick, 500);
setInterval(pollServer, 1_000);
setInterval(() => scheduleRefresh(0), 3_000);
setInterval(() => renderTimelinePanel(), 1_000);
window.addEventListener('online', () => scheduleRefresh(0));
window.addEventListener('resize', () => renderTimelinePanel());
pollServer();
fetchNotes();
fetchServerActivities();
start().catch((err) => {
  console.error(err);
  setStatus('error', 'bgsync could not start', err.message);
});
