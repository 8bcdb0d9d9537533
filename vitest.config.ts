import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // two cores: integration tests start SoftHSM, socat and simulators
    maxWorkers: 2,
    minWorkers: 1,
    setupFiles: ['test/helpers/setup.ts'],
  },
});
