/**
 * HeadStart -- a cold start's first request goes out before the engine is open.
 *
 * A worker woken by `sync` with items queued spends most of its cold start compiling the
 * module, loading the store and opening the engine (~100 ms in Chromium), while the one
 * request it will send first is already known: the engine says which (bgs_ahead) at
 * every flush, and the store keeps that "ticket" (the request, its body and validUntil)
 * beside the pages, in the same transaction (IndexedDbStore's meta 'ahead').
 *
 * A worker woken by `sync` reads the ticket (one small record, under the store's lock)
 * and sends that request at once; when the engine opens, its first call leases exactly
 * that item (bgs_claim_item), and the response is reported as the attempt's outcome.
 *
 * Why this keeps every guarantee:
 *  - the ticket is written atomically with the state it was computed from, and nothing
 *    changes the engine before the lease is taken (the claim is made inside the open,
 *    before any other call can run), so the item is unchanged: the bytes sent are the
 *    bytes the engine would have sent, under the same Idempotency-Key;
 *  - bgs_ahead's validUntil ends before any wake-up or expiry could change what a claim
 *    hands out first, so the order (priority, per-entity) is the order a claim keeps;
 *  - a ticket is only sent when the engine is not yet open in this life of the worker,
 *    so no other claim can hand the item out meanwhile; a worker killed before the lease
 *    is recorded leaves the item ready: it is sent again, with the same key (as after an
 *    expired lease; that attempt is not counted);
 *  - a ticket the engine cannot claim (a store that was damaged and quarantined, a queue
 *    reconfigured to expire it) is an orphan: its response is dropped, nothing changes.
 * Only queues without a batch endpoint or user constraints, bodies up to
 * MAX_TICKET_BODY_BYTES kept in the database, and stores with readAhead() (IndexedDB,
 * memory) take part.
 */

/** Larger bodies are not copied into the ticket at every flush. */
export const MAX_TICKET_BODY_BYTES = 64 * 1024;

const METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'GET', 'HEAD']);

/**
 * The tickets of `queues` as the engine stands: {v: 1, tickets: {queue: {item, body,
 * validUntil}}}, or null when no queue has one.
 */
export function takeTickets(binding, eng, queues, now) {
  const tickets = {};
  let any = false;
  for (const queue of queues) {
    let ahead;
    try {
      ahead = binding.ahead(eng, queue, now);
    } catch {
      continue; // e.g. a queue the engine does not know (yet): no ticket
    }
    const item = ahead?.item;
    if (!item || item.bodyRef || item.bodySize > MAX_TICKET_BODY_BYTES) continue;
    tickets[queue] = { item, body: binding.body(eng, item.id), validUntil: ahead.validUntil };
    any = true;
  }
  return any ? { v: 1, tickets } : null;
}

/** True when two ticket records say the same (so the stored one need not be rewritten). */
export function sameTickets(a, b) {
  if (a === null || b === null) return a === b;
  const qa = Object.keys(a.tickets);
  if (qa.length !== Object.keys(b.tickets).length) return false;
  return qa.every((q) => {
    const x = a.tickets[q];
    const y = b.tickets[q];
    return !!y && x.validUntil === y.validUntil && JSON.stringify(x.item) === JSON.stringify(y.item) && sameBytes(x.body, y.body);
  });
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The ticket of `queue` in a stored record, checked (it comes from storage): {ticket} when
 * it can be sent at `now`, {ticket: null, reason} otherwise (reason null: there is none).
 */
export function ticketFor(record, queue, now) {
  if (record === null || record === undefined) return { ticket: null, reason: null };
  if (!isPlainObject(record) || record.v !== 1 || !isPlainObject(record.tickets)) return { ticket: null, reason: 'not a ticket record' };
  const t = record.tickets[queue];
  if (t === undefined) return { ticket: null, reason: null };
  const item = t?.item;
  const ok =
    isPlainObject(item) && Number.isSafeInteger(item.id) && item.id > 0 && item.queue === queue &&
    typeof item.key === 'string' && item.key.length > 0 && typeof item.url === 'string' && METHODS.has(item.method) &&
    isPlainObject(item.headers) && Object.values(item.headers).every((v) => typeof v === 'string') &&
    (item.bodyRef === null || item.bodyRef === undefined) && t.body instanceof Uint8Array &&
    (t.validUntil === null || Number.isFinite(t.validUntil));
  if (!ok) return { ticket: null, reason: `the ticket of '${queue}' is not a ticket` };
  if (t.validUntil !== null && now >= t.validUntil) return { ticket: null, reason: null }; // the claim order may have changed
  return { ticket: t, reason: null };
}
