/**
 * BgsyncPlugin -- a Workbox plugin that queues a request whose fetch failed into a bgsync
 * queue, the way workbox-background-sync's BackgroundSyncPlugin does, but into the durable
 * engine (with idempotency keys, backoff and per-entity order):
 *
 *   registerRoute(/\/api\//, new NetworkOnly({ plugins: [new BgsyncPlugin(bgsync)] }), 'POST');
 *
 * The request is stored before the strategy's promise settles (Workbox awaits
 * fetchDidFail), so the failure the page sees comes after the item is durable.
 */
export class BgsyncPlugin {
  /**
   * @param {import('./BgsyncWorker.js').BgsyncWorker} worker
   * @param {{queue?: string, priority?: string, entity?: (request: Request) => string|undefined}} [options]
   */
  constructor(worker, { queue, priority, entity } = {}) {
    this.fetchDidFail = async ({ request }) => {
      await worker.enqueueRequest(request.clone(), {
        queue,
        priority,
        entity: typeof entity === 'function' ? entity(request) : undefined,
      });
    };
  }
}
