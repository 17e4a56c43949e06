// The npm package as an adopter gets it: `npm pack`, install the tarball into a fresh app,
// bundle a worker importing 'bgsync/sw' and a page importing 'bgsync' with esbuild, then
// one offline → online round trip in Chromium.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { E2eHarness, ROOT } from './support/E2eHarness.js';

const FIXTURE = join(ROOT, 'tests/e2e/fixtures-package');
let h;
let app;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'bgsync-package-'));
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', app], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop();
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'adopter-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(app, packed)], { cwd: app, stdio: 'pipe' });
  const pub = join(app, 'public');
  mkdirSync(pub);
  // Plain esbuild, as an adopter runs it: no plugin, no externals (the Node-only stores are
  // imported at run time, hidden from bundlers: sw/importNodeOnly.js).
  const common = { bundle: true, format: 'esm', platform: 'browser', absWorkingDir: app, nodePaths: [], logLevel: 'silent' };
  await build({ ...common, entryPoints: [join(FIXTURE, 'sw.src.js')], outfile: join(pub, 'sw.js') });
  await build({ ...common, entryPoints: [join(FIXTURE, 'app.src.js')], outfile: join(pub, 'app.js') });
  copyFileSync(join(app, 'node_modules/bgsync/sw/wasm/bgsync-engine.wasm'), join(pub, 'bgsync-engine.wasm'));
  copyFileSync(join(FIXTURE, 'index.html'), join(pub, 'index.html'));
  h = await E2eHarness.start({ fixtureDir: pub });
}, 120_000);

afterAll(async () => {
  await h?.stop();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('ships what an app needs: types, the worker entry, the page entry and the wasm', () => {
    const pkg = join(app, 'node_modules/bgsync');
    for (const f of ['web/index.js', 'web/index.d.ts', 'sw/index.js', 'sw/index.d.ts', 'sw/wasm/bgsync-engine.wasm']) {
      expect(existsSync(join(pkg, f))).toBe(true);
    }
    // Tests and sources of the engine stay out of the package.
    expect(readdirSync(pkg).sort()).not.toContain('tests');
    expect(readdirSync(pkg).sort()).not.toContain('core');
  });

  it('bundled into an app, queues offline and delivers once the API is back', async () => {
    h.reset();
    h.api.faults.set({ down: true });
    const s = await h.open('/');
    try {
      const { key } = await s.call((c) => c.enqueue({ url: '/api/notes', body: { text: 'from the package' } }));
      await h.waitFor(async () => {
        const st = await s.status();
        return st.state !== 'running' && st.counts.waiting === 1 && st;
      }, 'the offline attempt to fail');
      h.api.faults.set({ down: false });
      await s.setClockOffset(3_600_000);
      await s.dispatchSync('bgsync:default');
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery');
      expect(h.api.appliedKeys()).toEqual([key]);
      const notes = await (await fetch(`${h.url}/api/notes`)).json();
      expect(notes).toEqual([expect.objectContaining({ text: 'from the package' })]);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });
});
