// A large body goes through the whole path: page → worker → blob store beside the
// database → a killed worker → replay, and reaches the server byte for byte.
import { E2eHarness } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});

describe('large bodies', () => {
  it('stores a 300 KB body outside the database and delivers it intact after a worker restart', async () => {
    h.reset();
    h.api.faults.set({ down: true });
    const s = await h.open('/');
    try {
      const text = Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
      const item = await s.call((c, text) => c.enqueue({ url: '/api/notes/big', method: 'PUT', body: { text } }), text);
      // Not in the database: the blob store (IndexedDB `bgsync-blobs:default`) holds it.
      const [listed] = await s.call((c) => c.items());
      expect(listed.bodyRef).toEqual({ id: expect.any(String), size: expect.any(Number) });
      expect(listed.bodyRef.size).toBeGreaterThan(300_000);

      await s.stopWorker();
      await s.reload();
      h.api.faults.set({ down: false });
      await s.setClockOffset(3_600_000);
      await s.dispatchSync('bgsync:default');
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery');
      expect(h.api.appliedKeys()).toEqual([item.key]);
      const doc = await (await fetch(`${h.url}/api/notes/big`)).json();
      expect(doc.text).toBe(text);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });
});
