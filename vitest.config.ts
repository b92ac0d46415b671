import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start servers and databases; two cores, so keep the fan-out modest.
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
