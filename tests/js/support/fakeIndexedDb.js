/**
 * fake-indexeddb for the IndexedDB cases in Node, or null where it is not installed (those
 * cases are then skipped; the real IndexedDB runs in Chromium, tests/e2e/). Importing this
 * also provides the global IDBKeyRange that sw/storage/IndexedDbStore.js uses.
 */
export let fakeIdb = null;
try {
  fakeIdb = await import('fake-indexeddb');
  globalThis.IDBKeyRange ??= fakeIdb.IDBKeyRange;
} catch {
  // not installed
}
