// End-to-end: Jest drives Debian's Chromium (playwright-core) against real service workers.
export default {
  rootDir: '../..',
  testMatch: ['<rootDir>/tests/e2e/**/*.test.js'],
  testEnvironment: 'node',
  transform: {},
  modulePathIgnorePatterns: ['<rootDir>/build/'],
  testTimeout: 120000,
  maxWorkers: 1, // one browser at a time on a 2-core machine
};
