// Jest in Node: the real wasm module, the JS glue, the page API with fakes for browser-only APIs.
export default {
  rootDir: '../..',
  testMatch: ['<rootDir>/tests/js/**/*.test.js'],
  testEnvironment: 'node',
  transform: {},
  testTimeout: 30000,
};
