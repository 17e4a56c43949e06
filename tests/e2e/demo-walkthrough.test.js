// The demo, driven the way a new user tries it: the API goes down, a volunteer records two
// activities and edits a shared note, the API comes back, they press "Sync now", the
// status bar reaches "All changes synced", the server (SQLite) holds the records, and the
// attempt timeline shows the failed attempts and the delivery of each request. The other
// walkthroughs cover the conflicts inbox, dead letters (Retry, Discard), Settings (on a
// worker with the test clock, `/?testClock=1`) and the remaining server controls.
// Screenshots of every step go to tests/artifacts/demo-walkthrough/.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { SEED_NOTES, startDemo } from '../../demo/server/main.js';
import { CHROMIUM_ARGS, E2eHarness, E2eSession, ROOT, waitFor } from './support/E2eHarness.js';

const ARTIFACTS = join(ROOT, 'tests/artifacts/demo-walkthrough');
const VIEWPORT = { width: 1440, height: 1000 };

let demo;
let browser;
let harness;
let s; // E2eSession: page + CDP

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const dataFile = join(ARTIFACTS, 'reference-api.sqlite');
  // BGS_WASM_DIR: run against a module built elsewhere (BGS_WASM_OUT) instead of sw/wasm/.
  demo = await startDemo({ port: 0, dataFile, wasmDir: process.env.BGS_WASM_DIR || undefined });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  harness = new E2eHarness(demo, browser);
});

afterAll(async () => {
  await s?.close();
  await browser?.close().catch(() => undefined);
  await demo?.close();
});

/**
 * Opens the demo on a fresh browser profile, with the API healthy, and waits until its
 * SyncClient is connected. `path` '/?testClock=1' gives a worker whose clock the test moves.
 */
async function openDemo(path = '/') {
  demo.api.faults.reset(); // whatever an earlier walkthrough left switched on
  const context = await browser.newContext({ viewport: VIEWPORT });
  const session = new E2eSession(harness, context);
  await session.init(path, { waitReady: false });
  harness.sessions.add(session);
  await session.page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  return session;
}

async function shot(name, { element, fullPage = true } = {}) {
  const path = join(ARTIFACTS, `${name}.png`);
  if (element) {
    await s.page.locator(element).screenshot({ path });
  } else {
    await s.page.evaluate(() => window.scrollTo(0, 0)); // the status bar is sticky
    await s.page.screenshot({ path, fullPage });
  }
  return path;
}

/** The page's picture of the outbox (what the queue inspector draws). */
function outbox() {
  return s.page.evaluate(() => window.fieldLog.state.items.map((i) => ({ ...i })));
}

async function recordActivity({ volunteer, kind, place, hours, priority }) {
  const form = s.page.locator('#activity-form');
  await form.locator('input[name=volunteer]').fill(volunteer);
  await form.locator('select[name=kind]').selectOption(kind);
  await form.locator('input[name=place]').fill(place);
  await form.locator('input[name=hours]').fill(String(hours));
  await form.locator('select[name=priority]').selectOption(priority);
  const before = await s.page.locator('#activity-feedback').textContent();
  await form.locator('button[type=submit]').click();
  // "Saved on this device (outbox #n)": enqueue resolved, so the item is durable.
  await waitFor(async () => {
    const text = await s.page.locator('#activity-feedback').textContent();
    return text !== before && /Saved on this device/.test(text) && text;
  }, `activity "${place}" saved`);
}

/**
 * Presses "Sync now" like a person would: once, then again whenever everything waiting
 * is due (a request in its backoff is not sent before its time), until the status bar
 * reaches `wanted`. Returns how often it pressed.
 */
async function syncUntil(wanted) {
  const page = s.page;
  await page.click('#sync-now');
  let presses = 1;
  let lastPress = Date.now();
  await waitFor(async () => {
    if ((await page.locator('#status').getAttribute('data-state')) === wanted) return true;
    const items = await outbox();
    const allDue = items.every((i) => i.state !== 'waiting' || i.dueAt <= Date.now());
    if (allDue && Date.now() - lastPress > 1_000 && (await page.locator('#sync-now').isEnabled())) {
      presses++;
      lastPress = Date.now();
      await page.click('#sync-now');
    }
    return false;
  }, `the status bar to reach "${wanted}"`, { timeoutMs: 60_000 });
  return presses;
}

/** Seconds in a queue inspector countdown ("in 4.2 s", "in 12 s"); null for anything else. */
function countdownSeconds(text) {
  const m = /^in (\d+(?:\.\d)?) s$/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The queue inspector's rows as the page shows them: [{id, state, tries, last, next}]. */
function queueRows() {
  return s.page.locator('#queue-body tr[data-id]').evaluateAll((rows) =>
    rows.map((r) => {
      const cells = [...r.querySelectorAll('td')].map((td) => td.textContent);
      return { id: Number(r.dataset.id), state: r.dataset.state, tries: Number(cells[5]), last: cells[6], next: cells[7] };
    }));
}

/** Edits a shared note in the app (title kept, text replaced). */
async function editNote(id, text) {
  const page = s.page;
  await page.click(`.note[data-id="${id}"] button:has-text("Edit")`);
  await page.fill(`.note.editing[data-id="${id}"] textarea`, text);
  await page.click(`.note.editing[data-id="${id}"] button[type=submit]`);
  await page.waitForSelector(`.note[data-id="${id}"]:not(.editing)`);
}

const ACTIVITIES = [
  { volunteer: 'Ana Lima', kind: 'Litter pick', place: 'Riverside park', hours: 2, priority: 'normal' },
  { volunteer: 'Ana Lima', kind: 'Food bank shift', place: 'St. Mark’s hall', hours: 3.5, priority: 'high' },
];
const NOTE_ID = 'shift-plan';
const NOTE_TEXT = 'Meet at the depot at 7:30 (earlier: rain expected).\nBring gloves, water and a raincoat.';

describe('demo walkthrough', () => {
  it('queues work while the API is down, syncs it when it is back, and shows every attempt', async () => {
    s = await openDemo();
    try {
      const page = s.page;
      await page.waitForSelector(`.note[data-id="${NOTE_ID}"]`);
      expect(await page.locator('#status-last').textContent()).toBe('never'); // a fresh device
      await shot('01-ready');

      // 1. Take the API down from the server controls.
      await page.click('#api-down');
      await page.waitForSelector('body[data-api="down"]');
      expect(demo.api.faults.down).toBe(true);

      // 2. Record two activities and edit a shared note, offline.
      for (const a of ACTIVITIES) await recordActivity(a);
      await editNote(NOTE_ID, NOTE_TEXT);

      const queued = await outbox();
      expect(queued).toHaveLength(3);
      const note = queued.find((i) => i.method === 'PUT');
      expect(note).toMatchObject({ entity: `note:${NOTE_ID}`, priority: 'high' });
      expect(queued.filter((i) => i.method === 'POST').map((i) => i.priority).sort()).toEqual(['high', 'normal']);

      // The worker tries at once (Background Sync fires right away) and again after each
      // backoff: wait until every request failed at least once and one failed twice, so
      // the backoff is visible on the timeline.
      const keys = new Set(queued.map((i) => i.key));
      let seen = [];
      await waitFor(async () => {
        const items = await outbox();
        seen = items.map((i) => `${i.id}:${i.state}/${i.attempts}/next ${i.nextAttemptAt ? i.nextAttemptAt - Date.now() : '-'}`);
        return items.every((i) => i.state === 'waiting' && i.attempts >= 1) && items.some((i) => i.attempts >= 2);
      }, 'every request to fail once and one to fail again', { timeoutMs: 40_000 }).catch(async (err) => {
        const status = await page.evaluate(() => window.fieldLog?.client?.status()).catch((e) => String(e));
        throw Object.assign(err, { message: `${err.message}; outbox ${seen.join(', ')}; status ${JSON.stringify(status)}` });
      });
      // What reached the server were those attempts, under the items' keys, none applied.
      const failedKeys = new Set(demo.api.log.filter((e) => e.status === 0 && e.method !== 'GET').map((e) => e.key));
      expect(failedKeys).toEqual(keys);
      await waitFor(async () => /^3 changes waiting to sync$/.test(await page.locator('#status-text').textContent()), 'the status bar to count 3 waiting changes');
      expect(await page.locator('#status').getAttribute('data-state')).toBe('waiting');
      expect(demo.api.log.some((e) => e.applied)).toBe(false);

      // The queue inspector counts down to each waiting request's next try, and the
      // countdown runs: a later reading of the same try is smaller.
      const first = await waitFor(async () => {
        const row = (await queueRows()).find((r) => r.state === 'waiting' && countdownSeconds(r.next) > 1);
        return row && { ...row, seconds: countdownSeconds(row.next) };
      }, 'a waiting row with a countdown');
      expect(first.last).toBe('network error');
      await waitFor(async () => {
        const row = (await queueRows()).find((r) => r.id === first.id);
        const left = countdownSeconds(row?.next);
        return row?.tries === first.tries && left !== null && left < first.seconds;
      }, `the countdown of #${first.id} (${first.next}) to run down`);
      expect(await page.locator('#status-last').textContent()).toBe('never'); // failed tries synced nothing
      await shot('02-offline-queued');

      // 3. Bring the API back and sync: "Sync now" sends what is due; a request still in
      // its backoff goes when that ends (the page wakes the worker then), so press again
      // once everything is due, until the status bar says it is all synced.
      // Every answer is slowed down (the latency control), so the run is long enough to
      // watch the status bar count what it has sent.
      await page.click('#api-up');
      await page.waitForSelector('body[data-api="up"]');
      await page.selectOption('#latency', '1500');
      await waitFor(() => demo.api.faults.latencyMs === 1500, 'the added latency');
      await page.click('#sync-now');
      const syncing = await waitFor(async () => {
        const text = await page.locator('#status-text').textContent();
        return /^Syncing \d+ of \d+…$/.test(text) && text;
      }, 'the status bar to say "Syncing N of M…"');
      const [, done, total] = /^Syncing (\d+) of (\d+)…$/.exec(syncing).map(Number);
      expect(total).toBeGreaterThanOrEqual(1);
      expect(total).toBeLessThanOrEqual(3);
      expect(done).toBeLessThanOrEqual(total);
      expect(await page.locator('#status').getAttribute('data-state')).toBe('running');
      const presses = await syncUntil('synced');
      expect(presses).toBeGreaterThanOrEqual(1);
      expect(await page.locator('#status-text').textContent()).toBe('All changes synced');
      expect(await page.locator('#status-pending').textContent()).toBe('0');
      // "Last synced" now gives the time the run ended ("22:47:05 (just now)").
      expect(await page.locator('#status-last').textContent()).toMatch(/^\d\d:\d\d:\d\d \((just now|.+ ago)\)$/);
      await page.selectOption('#latency', '0');
      await waitFor(() => demo.api.faults.latencyMs === 0, 'no added latency');

      // 4. The server holds the records, each applied exactly once under its key.
      const stored = demo.api.store.list('activities');
      expect(stored.map((a) => a.place).sort()).toEqual(ACTIVITIES.map((a) => a.place).sort());
      expect(stored.every((a) => a.volunteer === 'Ana Lima')).toBe(true);
      expect(demo.api.store.get('notes', NOTE_ID).doc.text).toBe(NOTE_TEXT);
      expect(demo.api.store.get('notes', NOTE_ID).version).toBe(2);
      const applied = demo.api.log.filter((e) => e.applied).map((e) => e.key);
      expect(applied.sort()).toEqual([...keys].sort());
      expect(demo.kind).toBe('sqlite'); // the walkthrough ran against the SQLite store

      // The page agrees: every activity is shown as synced, the note has its new version.
      await waitFor(async () => (await page.locator('#my-activities .badge.s-done').count()) === 2, 'both activities shown as synced');
      await waitFor(async () => (await page.locator(`.note[data-id="${NOTE_ID}"] .note-head`).textContent()).includes('"v2"'), 'the note at version 2');
      await shot('03-synced');

      // 5. The timeline: for every request, failed attempts first, then one delivery.
      await waitFor(async () => (await page.locator('#timeline svg .tl-dot.ok').count()) === 3, 'three delivered dots');
      const dots = await page.locator('#timeline svg .tl-dot:not(.next)').evaluateAll((els) =>
        els.map((e) => ({ item: Number(e.dataset.item), status: Number(e.dataset.status), cls: e.getAttribute('class') })));
      for (const item of queued) {
        const mine = dots.filter((d) => d.item === item.id);
        expect(mine.filter((d) => d.cls.includes('fail')).length).toBeGreaterThanOrEqual(1);
        expect(mine.filter((d) => d.cls.includes('ok'))).toHaveLength(1);
        expect(mine[mine.length - 1].cls).toContain('ok'); // delivered last
      }
      expect(await page.locator('#timeline svg .tl-gap').count()).toBeGreaterThanOrEqual(3);
      await shot('04-timeline', { element: '#timeline' });
      await page.setViewportSize({ width: 1440, height: 1040 });
      await shot('05-overview', { fullPage: false });
    } catch (err) {
      s.annotate(err);
      await shot('failure').catch(() => undefined);
      throw err;
    }
  }, 180_000); // real backoff (seconds) on a loaded 2-core machine

  it('parks an edit that met someone else\'s edit in the conflicts inbox and keeps mine on request', async () => {
    await s?.close();
    s = await openDemo();
    try {
      const page = s.page;
      const id = 'supplies';
      const mine = 'Bin bags (3 rolls)\nFirst-aid kit refill\nTorch batteries';
      await page.waitForSelector(`.note[data-id="${id}"]`);
      const before = demo.api.store.get('notes', id);

      // Offline, I edit the note; meanwhile someone else changes it on the server.
      await page.click('#api-down');
      await page.waitForSelector('body[data-api="down"]');
      await editNote(id, mine);
      await page.selectOption('#edit-note', id);
      await page.click('#edit-remote');
      await waitFor(() => demo.api.store.get('notes', id).version === before.version + 1, 'the server-side edit');
      const theirs = demo.api.store.get('notes', id).doc.text;

      // Back online: my edit meets the newer version (412) and waits for me.
      await page.click('#api-up');
      await page.waitForSelector('body[data-api="up"]');
      await syncUntil('attention');
      expect(await page.locator('#status-text').textContent()).toBe('1 conflict needs you');
      expect(demo.api.log.some((e) => e.method === 'PUT' && e.status === 412)).toBe(true);
      // Side by side: the text changed on both sides, so its row is marked as a clash.
      const row = page.locator('#conflicts .conflict .diff tr.clash:has(th:text-is("text"))');
      await row.waitFor();
      expect(await row.locator('td').nth(0).textContent()).toBe(mine);
      expect(await row.locator('td').nth(1).textContent()).toBe(theirs);
      await shot('06-conflict');

      // Keep mine: sent again against the server's version, and applied.
      await page.click('#conflicts button:has-text("Keep mine")');
      await syncUntil('synced');
      const after = demo.api.store.get('notes', id);
      expect(after.doc.text).toBe(mine);
      expect(after.version).toBe(before.version + 2);
      expect(await page.locator('#conflicts').textContent()).toContain('None.');
      const v = `"v${after.version}"`;
      await waitFor(async () => (await page.locator(`.note[data-id="${id}"] .note-head`).textContent()).includes(v), `the note at ${v}`);
      await shot('07-conflict-resolved');
    } catch (err) {
      s.annotate(err);
      await shot('failure-conflict').catch(() => undefined);
      throw err;
    }
  });

  it('merges an edit with someone else\'s after switching the conflict setting to three-way merge', async () => {
    await s?.close();
    s = await openDemo();
    try {
      const page = s.page;
      const id = 'shift-plan';
      // Settings → Conflicts: three-way merge. Applying restarts the worker and reloads the page.
      await page.selectOption('#settings select[name=conflict]', 'merge');
      await Promise.all([page.waitForEvent('load'), page.click('#settings button[type=submit]')]);
      await page.waitForSelector('body[data-ready="true"]');
      expect(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL)).toContain('conflict=merge');
      expect(await page.locator('#settings select[name=conflict]').inputValue()).toBe('merge');
      await page.waitForSelector(`.note[data-id="${id}"]`);
      const before = demo.api.store.get('notes', id);

      // Offline I change the title; on the server someone changes the text.
      await page.click('#api-down');
      await page.waitForSelector('body[data-api="down"]');
      await page.click(`.note[data-id="${id}"] button:has-text("Edit")`);
      await page.fill(`.note.editing[data-id="${id}"] input[name=title]`, 'Saturday shift plan (confirmed)');
      await page.click(`.note.editing[data-id="${id}"] button[type=submit]`);
      await page.waitForSelector(`.note[data-id="${id}"]:not(.editing)`);
      await page.selectOption('#edit-note', id);
      await page.click('#edit-remote');
      await waitFor(() => demo.api.store.get('notes', id).version === before.version + 1, 'the server-side edit');
      const theirs = demo.api.store.get('notes', id).doc.text;

      // Back online: the 412 is resolved by the engine, no inbox, both changes kept.
      await page.click('#api-up');
      await page.waitForSelector('body[data-api="up"]');
      await syncUntil('synced');
      const after = demo.api.store.get('notes', id);
      expect(after.doc).toMatchObject({ title: 'Saturday shift plan (confirmed)', text: theirs });
      expect(demo.api.log.some((e) => e.path === `/api/notes/${id}` && e.status === 412)).toBe(true);
      expect(await page.locator('#conflicts').textContent()).toContain('None.');
    } catch (err) {
      s.annotate(err);
      await shot('failure-merge').catch(() => undefined);
      throw err;
    }
  });

  it('turns a refused request into a dead letter that can be sent again', async () => {
    await s?.close();
    s = await openDemo();
    try {
      const page = s.page;
      const place = 'Community garden';
      // The server refuses every request with 422: retrying cannot help, so no backoff.
      await page.click('#fault-422');
      await waitFor(() => demo.api.faults.status === 422, 'the 422 fault');
      await recordActivity({ volunteer: 'Bo Chen', kind: 'Tree planting', place, hours: 1.5, priority: 'low' });
      const row = page.locator('#dead li.row');
      await row.waitFor();
      expect(await row.locator('.row-sub').textContent()).toMatch(/rejected · last answer 422 · 1 try/);
      await page.waitForSelector('#status[data-state="attention"]');
      expect(await page.locator('#status-text').textContent()).toBe('1 dead letter needs you');
      const [dead] = await outbox();
      expect(dead).toMatchObject({ state: 'dead', attempts: 1, lastStatus: 422 });
      await shot('08-dead-letter');

      // The server is fixed; Retry sends the same request again, under the same key.
      await page.click('#fault-422');
      await waitFor(() => demo.api.faults.status === 0, 'the fault cleared');
      await row.locator('button:has-text("Retry")').click();
      await syncUntil('synced');
      expect(demo.api.store.list('activities').filter((a) => a.place === place)).toHaveLength(1);
      const attempts = demo.api.log.filter((e) => e.key === dead.key).map((e) => [e.status, e.applied]);
      expect(attempts).toEqual([[422, false], [201, true]]);
      expect(await page.locator('#dead').textContent()).toContain('None.');
    } catch (err) {
      s.annotate(err);
      await shot('failure-dead-letter').catch(() => undefined);
      throw err;
    }
  });

  it('discards a dead letter: it leaves the panel and never reaches the server', async () => {
    await s?.close();
    s = await openDemo();
    try {
      const page = s.page;
      const place = 'Old quarry';
      await page.click('#fault-422');
      await waitFor(() => demo.api.faults.status === 422, 'the 422 fault');
      await recordActivity({ volunteer: 'Bo Chen', kind: 'Other', place, hours: 2, priority: 'normal' });
      const row = page.locator('#dead li.row');
      await row.waitFor();
      const [dead] = await outbox();
      expect(dead).toMatchObject({ state: 'dead', attempts: 1, lastStatus: 422 });

      // The server is fixed first, so anything still sent from now on would be applied.
      await page.click('#fault-422');
      await waitFor(() => demo.api.faults.status === 0, 'the fault cleared');
      await row.locator('button:has-text("Discard")').click();
      await waitFor(async () => (await page.locator('#dead').textContent()) === 'None.', 'the dead-letter panel to say None.');
      await waitFor(async () => (await outbox()).length === 0, 'the outbox to forget the item');
      expect(await page.locator('#queue-body').textContent()).toBe('The outbox is empty.');
      // Nothing needs the volunteer any more, and nothing was synced: not "All changes synced".
      await waitFor(async () => (await page.locator('#status').getAttribute('data-state')) === 'idle', 'the status bar to say Ready');
      expect(await page.locator('#status-text').textContent()).toBe('Ready');
      expect(await page.locator('#status-pending').textContent()).toBe('0');
      expect(await page.locator('#status-last').textContent()).toBe('never');
      // The activity says what became of it (not "in the outbox" forever).
      expect(await page.locator('#my-activities .row').first().locator('.badge').textContent()).toBe('discarded');

      // A sync afterwards sends nothing: the server saw the one refused try, applied nothing.
      await page.click('#sync-now');
      await waitFor(() => page.locator('#sync-now').isEnabled(), 'the sync to end');
      expect(demo.api.log.filter((e) => e.key === dead.key).map((e) => [e.status, e.applied])).toEqual([[422, false]]);
      // A run that sent nothing synced nothing either.
      expect(await page.locator('#status-text').textContent()).toBe('Ready');
      expect(await page.locator('#status-last').textContent()).toBe('never');
      expect(demo.api.store.list('activities').filter((a) => a.place === place)).toEqual([]);
    } catch (err) {
      s.annotate(err);
      await shot('failure-discard').catch(() => undefined);
      throw err;
    }
  });

  it('runs the worker with the backoff and storage chosen in Settings: linear gaps, no jitter, memory', async () => {
    await s?.close();
    s = await openDemo('/?testClock=1');
    try {
      const page = s.page;
      // A first retry after 10 min: the test moves the worker's clock past each delay.
      const FIRST_MS = 600_000;
      const SLACK_MS = 60_000; // real time the test itself takes between two tries
      await page.selectOption('#settings select[name=backoff]', 'linear');
      await page.fill('#settings input[name=initialS]', String(FIRST_MS / 1000));
      await page.fill('#settings input[name=maxS]', '86400');
      await page.selectOption('#settings select[name=jitter]', 'none');
      await page.selectOption('#settings select[name=storage]', 'memory');
      await Promise.all([page.waitForEvent('load'), page.click('#settings button[type=submit]')]);
      await page.waitForSelector('body[data-ready="true"]');
      const scriptURL = new URL(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL));
      expect(Object.fromEntries(scriptURL.searchParams)).toMatchObject({
        backoff: 'linear', initialMs: String(FIRST_MS), maxMs: '86400000', jitter: 'none', storage: 'memory', testClock: '1',
      });
      expect(await page.locator('#settings select[name=backoff]').inputValue()).toBe('linear');
      expect(await page.locator('#settings select[name=jitter]').inputValue()).toBe('none');
      expect(await page.locator('#settings select[name=storage]').inputValue()).toBe('memory');

      await page.click('#api-down');
      await page.waitForSelector('body[data-api="down"]');
      await recordActivity({ volunteer: 'Di Rossi', kind: 'Litter pick', place: 'Canal path', hours: 1, priority: 'normal' });
      const [item] = await waitFor(async () => {
        const items = await outbox();
        return items.length === 1 && items;
      }, 'the item in the outbox');
      const attempts = () => page.evaluate((id) => window.fieldLog.client.attempts({ id }), item.id);
      await waitFor(async () => (await attempts()).length === 1, 'the first (failed) try');

      // Move the worker's clock past the n-th delay (linear: n × the first), then sync.
      let offset = 0;
      for (let n = 1; n <= 3; n++) {
        offset += n * FIRST_MS;
        await page.evaluate((ms) => window.fieldLog.setClockOffset(ms), offset);
        await page.click('#sync-now');
        await waitFor(async () => (await attempts()).length === n + 1, `try ${n + 1}`);
      }
      const log = await attempts();
      expect(log.map((a) => [a.status, a.state])).toEqual([[0, 'waiting'], [0, 'waiting'], [0, 'waiting'], [0, 'waiting']]);
      // The delays the engine chose, exactly (no jitter), and the gaps the tries really had.
      expect(log.map((a) => a.delayMs)).toEqual([1, 2, 3, 4].map((n) => n * FIRST_MS));
      const gaps = log.slice(1).map((a, k) => a.at - log[k].at);
      gaps.forEach((gap, k) => {
        expect(gap).toBeGreaterThanOrEqual((k + 1) * FIRST_MS);
        expect(gap).toBeLessThan((k + 1) * FIRST_MS + SLACK_MS);
      });
      await waitFor(async () => (await queueRows()).find((r) => r.id === item.id)?.tries === 4, 'the inspector to show 4 tries');
      await page.click('#api-up');
    } catch (err) {
      s.annotate(err);
      await shot('failure-settings').catch(() => undefined);
      throw err;
    }
  });

  it('keeps the server\'s data and idempotency records in SQLite across a restart', async () => {
    const applied = demo.api.log.filter((e) => e.applied && e.method === 'POST');
    expect(applied.length).toBeGreaterThanOrEqual(2);
    const again = await startDemo({ port: 0, dataFile: demo.dataFile });
    try {
      expect(again.kind).toBe('sqlite');
      expect(again.api.store.list('activities').map((a) => a.id).sort()).toEqual(demo.api.store.list('activities').map((a) => a.id).sort());
      // A retry that arrives after the restart is answered from the stored record, not applied again.
      const res = await fetch(`${again.url}${applied[0].path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': applied[0].key },
        body: JSON.stringify({ place: 'would be a duplicate' }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('idempotent-replay')).toBe('true');
      expect(again.api.store.list('activities').some((a) => a.place === 'would be a duplicate')).toBe(false);
    } finally {
      await again.close();
    }
  });

  it('is an installable app (manifest, icons, worker with a fetch handler)', async () => {
    const manifest = await (await fetch(`${demo.url}/manifest.webmanifest`)).json();
    expect(manifest).toMatchObject({ start_url: '/', display: 'standalone' });
    for (const icon of manifest.icons) {
      const res = await fetch(new URL(icon.src, demo.url));
      expect([icon.src, res.status]).toEqual([icon.src, 200]);
    }
    expect(existsSync(join(ROOT, 'demo/app/sw.js'))).toBe(true);
    // Chromium's own verdict (a test browser context counts as incognito; nothing else may be wrong).
    const { installabilityErrors } = await s.cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors.map((e) => e.errorId).filter((id) => id !== 'in-incognito')).toEqual([]);
    const { errors } = await s.cdp.send('Page.getAppManifest');
    expect(errors).toEqual([]);
  });

  it('shows what the other server controls do: 503 with Retry-After, random failures, reset', async () => {
    await s?.close();
    s = await openDemo();
    try {
      const page = s.page;
      // 503 + Retry-After: 10. The demo's own first retry would come after at most 3 s.
      await page.click('#fault-503');
      // The panel shows the plan the server answered with.
      await page.waitForSelector('#fault-503[aria-pressed="true"]');
      expect(demo.api.faults.describe()).toMatchObject({ status: 503, retryAfter: '10' });
      expect(await page.locator('#faults-summary').textContent()).toContain('every request answered 503 with Retry-After: 10');
      await recordActivity({ volunteer: 'Cy Okafor', kind: 'Home visit', place: 'Elm Street', hours: 1, priority: 'normal' });
      const [item] = await waitFor(async () => {
        const items = await outbox();
        return items.length === 1 && items;
      }, 'the item in the outbox');
      const refused = await waitFor(() => demo.api.log.find((e) => e.key === item.key && e.status === 503), 'the 503 answer');
      const row = await waitFor(async () => {
        const r = (await queueRows()).find((x) => x.id === item.id);
        return r?.state === 'waiting' && countdownSeconds(r.next) !== null && r;
      }, 'the waiting row with its countdown');
      const leftMs = countdownSeconds(row.next) * 1000;
      expect(row.last).toBe('503');
      expect(leftMs).toBeGreaterThan(3_000); // longer than the demo's longest first backoff
      // ...because it counts down from the answer's Retry-After: 10 s.
      expect(leftMs + (Date.now() - refused.at)).toBeGreaterThanOrEqual(9_500);
      await shot('09-retry-after');

      // Off again: the request goes once its 10 s are over, and is applied.
      await page.click('#fault-503');
      await waitFor(() => demo.api.faults.status === 0, 'the 503 fault cleared');
      await syncUntil('synced');
      const tries = demo.api.log.filter((e) => e.key === item.key);
      expect(tries.map((e) => [e.status, e.applied])).toEqual([[503, false], [201, true]]);
      expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(10_000);

      // Random failures at 50 % (the slider): the API fails some requests and serves others.
      await page.locator('#failure-rate').fill('50');
      await waitFor(async () => (await page.locator('#faults-summary').textContent()).includes('50% of requests fail with 503'), 'the panel to show a 50 % failure rate');
      expect(demo.api.faults.failureRate).toBe(0.5);
      expect(await page.locator('#failure-rate-out').textContent()).toBe('50%');
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push((await fetch(`${demo.url}/api/notes`)).status);
      expect(new Set(answers)).toEqual(new Set([200, 503]));
      await page.locator('#failure-rate').fill('0');
      await waitFor(() => demo.api.faults.failureRate === 0, 'no random failures');

      // Reset server: after someone else's edit and a delivered activity, everything is as at start.
      const id = 'supplies';
      const edited = demo.api.store.get('notes', id).version + 1;
      await page.selectOption('#edit-note', id);
      await page.click('#edit-remote');
      await waitFor(() => demo.api.store.get('notes', id).version === edited, 'the server-side edit');
      await page.selectOption('#latency', '300');
      await waitFor(() => demo.api.faults.latencyMs === 300, 'the added latency');
      await page.click('#server-reset');
      await waitFor(() => demo.api.store.get('notes', id)?.version === 1, 'the notes seeded again');
      expect(demo.api.store.get('notes', id).doc.text).toBe(SEED_NOTES.find((n) => n.id === id).text);
      expect(demo.api.store.list('activities')).toEqual([]);
      expect(demo.api.log.filter((e) => e.method !== 'GET')).toEqual([]); // the page reads its notes again, nothing else
      expect(demo.api.faults.describe()).toMatchObject({ down: false, status: 0, latencyMs: 0, failureRate: 0 });
      await waitFor(async () => (await page.locator('#faults-summary').textContent()) === 'Now: the API is healthy.', 'the panel to show a healthy API');
      expect(await page.locator('#latency').inputValue()).toBe('0');
      expect(await page.locator('#log-body').textContent()).toBe('No writes yet.');
      await waitFor(async () => (await page.locator(`.note[data-id="${id}"] .note-head`).textContent()).includes('"v1"'), 'the note back at "v1"');
    } catch (err) {
      s.annotate(err);
      await shot('failure-controls').catch(() => undefined);
      throw err;
    }
  });
});
