// An app's page that uses the installed package; exposes window.bgsTest like the e2e fixture.
import { SyncClient, BgsyncError } from 'bgsync';

const t = (window.bgsTest = { events: [], BgsyncError });
t.ready = (async () => {
  await navigator.serviceWorker.register('/sw.js', { type: 'module', scope: '/' });
  const client = new SyncClient();
  for (const type of ['progress', 'status', 'completed', 'failed']) {
    client.addEventListener(type, (e) => t.events.push({ type, detail: e.detail }));
  }
  await client.ready();
  t.client = client;
  t.setClockOffset = (offsetMs) => client._request('testClock', { offsetMs });
  return true;
})();
