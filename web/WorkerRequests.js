/**
 * WorkerRequests -- how SyncClient's calls travel to the service worker (web/protocol.js).
 *
 * A call is a message with a MessageChannel port that carries its answer. Calls made in the
 * same task (a page that enqueues 1000 changes under one Promise.all) leave as ONE `batch`
 * message on one port instead of 1000 messages and 1000 channels: the worker answers each
 * call on that port as soon as it is done, tagged with its index, so a slow call (a
 * syncNow) never holds back a fast one (an enqueue), and every call keeps its own timeout.
 * The worker runs a batch's calls in order, as it runs separate messages in arrival order.
 *
 * Only workers that said `batch` in their hello get batches (an older worker still gets one
 * message per call); a batch whose message cannot be cloned is sent again call by call, so
 * only the call with the unclonable body fails.
 */
import { BgsyncError } from './BgsyncError.js';
import { MAX_BATCH_CALLS, PROTOCOL_VERSION } from './protocol.js';

export class WorkerRequests {
  /** @param {{timeoutMs: number}} options */
  constructor({ timeoutMs }) {
    this.timeoutMs = timeoutMs;
    this._pending = null; // {worker, calls} gathered in this task, or null
  }

  /**
   * Sends one call and resolves with its result (rejects with the worker's BgsyncError).
   * batch: the worker accepts batches (its hello said so).
   */
  send(worker, type, args, { batch = false } = {}) {
    const call = { type, args };
    const answered = new Promise((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    if (!batch) {
      this._post(worker, [call]);
    } else {
      if (this._pending && this._pending.worker !== worker) this._flush();
      if (!this._pending) {
        this._pending = { worker, calls: [] };
        // After the calls this task's microtasks still make: they resume in order, and this
        // runs once they all queued theirs.
        queueMicrotask(() => this._flush());
      }
      this._pending.calls.push(call);
      if (this._pending.calls.length >= MAX_BATCH_CALLS) this._flush();
    }
    return withTimeout(answered, this.timeoutMs, 'timeout', type).finally(() => {
      call.settled = true;
      call.onSettled?.();
    });
  }

  _flush() {
    const pending = this._pending;
    this._pending = null;
    if (pending && pending.calls.length > 0) this._post(pending.worker, pending.calls);
  }

  /** Posts calls as one message (a batch when more than one) on a new channel. */
  _post(worker, calls) {
    const channel = new MessageChannel();
    let open = calls.length;
    const closeWhenDone = () => {
      if (--open === 0) channel.port1.close();
    };
    for (const call of calls) call.onSettled = closeWhenDone;
    channel.port1.onmessage = (e) => {
      const msg = e.data;
      const targets = Number.isInteger(msg?.index) && calls[msg.index] ? [calls[msg.index]] : calls;
      for (const call of targets) settle(call, msg);
    };
    const message = calls.length === 1
      ? { bgsync: PROTOCOL_VERSION, type: calls[0].type, args: calls[0].args }
      : { bgsync: PROTOCOL_VERSION, type: 'batch', args: { calls: calls.map(({ type, args }) => ({ type, args })) } };
    try {
      worker.postMessage(message, [channel.port2]);
    } catch (err) {
      channel.port1.close();
      for (const call of calls) call.onSettled = undefined;
      if (calls.length > 1 && err?.name === 'DataCloneError') {
        for (const call of calls) this._post(worker, [call]);
        return;
      }
      const failure = err?.name === 'DataCloneError'
        ? new BgsyncError('unclonable-body', err.message, { cause: err })
        : err;
      for (const call of calls) call.reject(failure);
    }
  }
}

function settle(call, msg) {
  if (call.settled) return;
  if (!msg || msg.bgsync !== PROTOCOL_VERSION) {
    call.reject(new BgsyncError('protocol-mismatch', `worker answered with protocol ${String(msg?.bgsync)}`));
  } else if (msg.ok) call.resolve(msg.result);
  else call.reject(BgsyncError.fromJSON(msg.error));
}

export function withTimeout(promise, ms, code, detail) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new BgsyncError(code, detail)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
