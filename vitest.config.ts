import { defineConfig } from 'vitest/config';

// The default run: unit tests, golden vectors and the loopback e2e tests that take seconds.
// Long experiments live behind `npm run test:slow` (vitest.slow.config.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.slow.test.ts', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
