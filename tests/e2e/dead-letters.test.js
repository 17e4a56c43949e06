// Dead letters through SyncClient: a request the server refuses for good (4xx) is a dead
// letter, the pages hear `dead`, and the app can send it again (same key) or discard it.
import { E2eHarness } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});

describe('dead letters', () => {
  it('lists refused requests, retries one with its key and discards another', async () => {
    h.reset();
    h.api.faults.set({ status: 422 });
    const s = await h.open('/');
    try {
      const [a, b] = await s.call(async (c) => [
        await c.enqueue({ url: '/api/notes', body: { n: 1 } }),
        await c.enqueue({ url: '/api/notes', body: { n: 2 } }),
      ]);
      await h.waitFor(async () => (await s.events()).filter((e) => e.type === 'dead').length === 2, 'two dead events');
      const dead = await s.call((c) => c.deadLetters('default'));
      expect(dead.map((d) => [d.id, d.state, d.lastStatus])).toEqual([
        [a.id, 'dead', 422],
        [b.id, 'dead', 422],
      ]);

      h.api.faults.set({ status: 0 });
      await s.call((c, id) => c.discardDead(id), b.id);
      await s.call((c, id) => c.retryDead(id), a.id);
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'the retried letter delivered');
      expect(h.api.appliedKeys()).toEqual([a.key]); // same idempotency key as the refused attempt
      expect(await s.call((c) => c.deadLetters())).toEqual([]);
      expect(h.log().filter((e) => e.key === b.key)).toHaveLength(1); // discarded: never sent again
      // The attempt log has the refusal and the delivery of the retried one. The server
      // applies a request before the worker hears its answer, so wait for the worker's
      // record of it (under load the read could come first).
      const attemptsOfA = () => s.call((c, id) => c.attempts({ id }), a.id);
      await h.waitFor(async () => (await attemptsOfA()).length === 2, 'the delivery in the attempt log');
      expect((await attemptsOfA()).map((x) => x.status)).toEqual([422, 201]);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });
});
