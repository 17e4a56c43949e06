// A large body goes through the whole path: page → worker → blob store beside the
// database → a killed worker → replay, and reaches the server byte for byte.
import { E2eHarness } from './support/E2eHarness.js';

let h;
/**
 * POST /api/uploads, answered here and not by the reference API (which takes JSON bodies
 * only and keeps no raw bytes): each request's content type and raw body, in order.
 * While `down`, the connection is reset, as the harness's {down: true} fault does.
 */
const uploads = { down: false, received: [] };
beforeAll(async () => {
  h = await E2eHarness.start();
  const handle = h.api.handle.bind(h.api);
  h.api.handle = async (req, res, url) => {
    if (url.pathname !== '/api/uploads') return handle(req, res, url);
    if (uploads.down) {
      req.socket.destroy();
      return true;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    uploads.received.push({ type: req.headers['content-type'], key: req.headers['idempotency-key'], body: Buffer.concat(chunks) });
    res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    return true;
  };
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

  it('stores a FormData with a 200 KB file outside the database and delivers the multipart body intact', async () => {
    h.reset();
    uploads.down = true;
    uploads.received = [];
    const FILE_BYTES = 200_000;
    const fileBytes = Buffer.alloc(FILE_BYTES);
    for (let i = 0; i < FILE_BYTES; i++) fileBytes[i] = (i * 31 + 7) & 0xff; // every byte value, CR LF and '-' too
    const s = await h.open('/');
    try {
      const item = await s.call((c, n) => {
        const bytes = new Uint8Array(n);
        for (let i = 0; i < n; i++) bytes[i] = (i * 31 + 7) & 0xff;
        const form = new FormData();
        form.append('title', 'holiday ✓');
        form.append('photo', new File([bytes], 'photo.bin', { type: 'application/octet-stream' }));
        return c.enqueue({ url: '/api/uploads', method: 'POST', body: form });
      }, FILE_BYTES);
      const [listed] = await s.call((c) => c.items());
      expect(listed.bodyRef).toEqual({ id: expect.any(String), size: expect.any(Number) });
      expect(listed.bodyRef.size).toBeGreaterThan(FILE_BYTES);

      await s.stopWorker();
      await s.reload();
      uploads.down = false;
      await s.setClockOffset(3_600_000);
      await s.dispatchSync('bgsync:default');
      await h.waitFor(() => uploads.received.length === 1, 'the upload');
      const got = uploads.received[0];
      expect(got.key).toBe(item.key);
      expect(got.type).toMatch(/^multipart\/form-data; boundary=/);
      expect(got.body.length).toBe(listed.bodyRef.size); // what was stored is what was sent
      const form = await new Response(got.body, { headers: { 'content-type': got.type } }).formData();
      expect(form.get('title')).toBe('holiday ✓');
      const photo = form.get('photo');
      expect(photo.name).toBe('photo.bin');
      expect(photo.type).toBe('application/octet-stream');
      expect(Buffer.compare(Buffer.from(await photo.arrayBuffer()), fileBytes)).toBe(0);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      uploads.down = false;
      await s.close();
    }
  });
});
