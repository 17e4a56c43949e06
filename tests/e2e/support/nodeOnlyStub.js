/**
 * nodeOnlyStub -- an esbuild plugin for bundling bgsync's worker side for a browser.
 *
 * Why: sw/storage/openStore.js loads FileStore (Node only) with a literal
 * `import('./FileStore.js')`; bundlers follow it, and esbuild hoists FileStore's static
 * `node:fs/promises` / `node:path` imports to the top of the bundle, where a service
 * worker cannot load them. This plugin swaps FileStore for a stub that throws if used.
 * An adopter bundling with esbuild needs the same until openStore hides that import from
 * bundlers; remove this plugin then.
 */
export const nodeOnlyStub = {
  name: 'bgsync-node-only-stub',
  setup(build) {
    build.onResolve({ filter: /[\\/]FileStore\.js$/ }, (args) =>
      /[\\/]storage$/.test(args.resolveDir) ? { path: 'FileStore', namespace: 'bgsync-node-only' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'bgsync-node-only' }, () => ({
      contents: "export class FileStore { constructor() { throw new Error('FileStore is for Node only'); } }",
      loader: 'js',
    }));
  },
};
