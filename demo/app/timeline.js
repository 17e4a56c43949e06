/**
 * timeline -- the attempt timeline: one row per request, time running left to right, a
 * dot per attempt (coloured by what the server answered) and the gap between two dots
 * labelled with its length, so exponential backoff is visible as gaps that double.
 * A hollow dot marks the next scheduled try of a waiting request.
 *
 * Pure view: it draws what it is given ({items, attempts, now}) and keeps no state.
 */
import { clock, duration, pathOf, s, statusText } from './dom.js';

const MAX_ROWS = 8;
const LABEL_W = 190;
const ROW_H = 34;
const AXIS_H = 26;
const PAD_R = 18;
const NICE_STEPS_MS = [250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];

/** The colour class of one attempt. */
export function attemptClass(a) {
  if (a.status >= 200 && a.status < 300) return 'ok';
  if (a.state === 'conflict' || a.status === 409 || a.status === 412) return 'conflict';
  if (a.state === 'dead') return 'dead';
  return 'fail';
}

/**
 * @param {HTMLElement} container
 * @param {{items: object[], attempts: object[], now: number}} data
 *   items as SyncClient.items() gives them; attempts [{id, attempt, at, status, state, delayMs}]
 */
export function renderTimeline(container, { items, attempts, now }) {
  const byItem = new Map();
  for (const a of attempts) {
    if (!byItem.has(a.id)) byItem.set(a.id, []);
    byItem.get(a.id).push(a);
  }
  for (const list of byItem.values()) list.sort((x, y) => x.at - y.at);
  const rows = items
    .filter((i) => byItem.has(i.id) || i.state === 'waiting' || i.state === 'inflight')
    .sort((x, y) => x.id - y.id)
    .slice(-MAX_ROWS);
  if (rows.length === 0) return false;

  // Time domain: from the first row's creation to now, or to the latest scheduled retry.
  let t0 = Infinity;
  let t1 = now;
  for (const item of rows) {
    t0 = Math.min(t0, item.createdAt ?? now, ...(byItem.get(item.id) ?? []).map((a) => a.at));
    if (item.state === 'waiting' && item.dueAt) t1 = Math.max(t1, item.dueAt);
  }
  const span = Math.max(t1 - t0, 2_000) * 1.04;
  const width = Math.max(container.clientWidth || 640, 420);
  const plotW = width - LABEL_W - PAD_R;
  const x = (t) => LABEL_W + ((t - t0) / span) * plotW;
  const height = AXIS_H + rows.length * ROW_H + 16;

  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'Attempt timeline' });

  // Axis: ticks at a round step, labelled relative to the first request.
  const step = NICE_STEPS_MS.find((ms) => span / ms <= 8) ?? NICE_STEPS_MS[NICE_STEPS_MS.length - 1];
  for (let t = 0; t <= span; t += step) {
    const px = x(t0 + t);
    svg.append(
      s('line', { x1: px, x2: px, y1: AXIS_H - 4, y2: height - 4, class: 'tl-grid' }),
      s('text', { x: px, y: AXIS_H - 10, class: 'tl-tick', 'text-anchor': 'middle' }, t === 0 ? clock(t0) : `+${duration(t)}`),
    );
  }
  const nowX = x(now);
  svg.append(
    s('line', { x1: nowX, x2: nowX, y1: AXIS_H - 4, y2: height - 4, class: 'tl-now' }),
    s('text', { x: nowX + 3, y: height - 6, class: 'tl-now-label' }, 'now'),
  );

  rows.forEach((item, r) => {
    const y = AXIS_H + r * ROW_H + ROW_H / 2;
    const list = byItem.get(item.id) ?? [];
    const label = `#${item.id} ${item.method} ${pathOf(item.url)}`;
    svg.append(
      s('text', { x: 8, y: y + 4, class: 'tl-label' }, s('title', {}, label), label.length > 26 ? `${label.slice(0, 25)}…` : label),
    );
    const last = list[list.length - 1];
    const endT = item.state === 'done' || item.state === 'dead' ? (last?.at ?? now) : now;
    const startX = x(item.createdAt ?? list[0]?.at ?? now);
    svg.append(s('line', { x1: startX, x2: x(endT), y1: y, y2: y, class: 'tl-life' }));
    svg.append(s('rect', { x: startX - 3, y: y - 3, width: 6, height: 6, class: 'tl-enq' }, s('title', {}, `queued at ${clock(item.createdAt)}`)));

    // Gaps between attempts (the backoff), labelled when there is room.
    for (let k = 1; k < list.length; k++) {
      const a = x(list[k - 1].at);
      const b = x(list[k].at);
      svg.append(s('line', { x1: a, x2: b, y1: y, y2: y, class: 'tl-gap' }));
      if (b - a > 40) svg.append(s('text', { x: (a + b) / 2, y: y - 7, class: 'tl-gap-label', 'text-anchor': 'middle' }, duration(list[k].at - list[k - 1].at)));
    }
    if (item.state === 'waiting' && item.dueAt && last) {
      const a = x(last.at);
      const b = x(item.dueAt);
      svg.append(s('line', { x1: a, x2: b, y1: y, y2: y, class: 'tl-gap next' }));
      if (b - a > 40) svg.append(s('text', { x: (a + b) / 2, y: y - 7, class: 'tl-gap-label', 'text-anchor': 'middle' }, duration(item.dueAt - last.at)));
      svg.append(s('circle', { cx: b, cy: y, r: 5.5, class: 'tl-dot next' }, s('title', {}, `next try at ${clock(item.dueAt)}`)));
    }
    for (const a of list) {
      const tip = `attempt ${a.attempt ?? ''} at ${clock(a.at)}: ${statusText(a.status)} → ${a.state}` +
        (a.delayMs ? `, next in ${duration(a.delayMs)}` : '');
      svg.append(
        s('circle', { cx: x(a.at), cy: y, r: 6, class: `tl-dot ${attemptClass(a)}`, 'data-item': item.id, 'data-status': a.status }, s('title', {}, tip)),
      );
    }
  });
  container.replaceChildren(svg);
  return true;
}
