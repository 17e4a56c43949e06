/**
 * dom -- the few helpers the demo's views share: building elements without innerHTML
 * (every string from the server or the queue is text, never markup) and formatting
 * times and durations for people.
 */

/**
 * h('td', {class: 'num', title: 'x'}, 'text', child, [more]) -> an element.
 * Attributes starting with "on" become listeners; `dataset` sets data-* values.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** SVG elements (the timeline). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** "12:04:31" in local time. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** 850 -> "0.9 s", 65000 -> "1 min 5 s", 7200000 -> "2 h". */
export function duration(ms) {
  const abs = Math.abs(ms);
  if (abs < 10_000) return `${(abs / 1000).toFixed(1)} s`;
  if (abs < 60_000) return `${Math.round(abs / 1000)} s`;
  if (abs < 3_600_000) {
    const m = Math.floor(abs / 60_000);
    const sec = Math.round((abs % 60_000) / 1000);
    return sec ? `${m} min ${sec} s` : `${m} min`;
  }
  return `${(abs / 3_600_000).toFixed(abs < 36_000_000 ? 1 : 0)} h`;
}

/** "just now", "12 s ago", "3 min ago". */
export function ago(ms, now = Date.now()) {
  const d = now - ms;
  if (d < 2_000) return 'just now';
  return `${duration(d)} ago`;
}

/** The path (and query) of a URL, for compact display. */
export function pathOf(url) {
  try {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
  } catch {
    return String(url);
  }
}

/** A human name for an HTTP status as the engine reports it (0 = no response). */
export function statusText(status) {
  if (status === 0) return 'network error';
  if (status === null || status === undefined) return '';
  return String(status);
}
