/**
 * importNodeOnly -- loads a module that only Node needs (node:fs, FileStore) in a way that
 * bundlers do not follow. A literal `import('node:fs/promises')` makes esbuild, Vite and
 * webpack try to put Node's file system into a service-worker bundle (esbuild fails on
 * it); a specifier held in a variable is left to run time, where only Node asks for it.
 */
export function importNodeOnly(specifier) {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}

/** A module beside `base` (pass import.meta.url), imported the same way. */
export function importNodeOnlyBeside(relative, base) {
  return importNodeOnly(new URL(relative, base).href);
}
