import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-output/vitest.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/node/**'] },
      },
      {
        // Real pods on a real one-node cluster (hack/node.sh), started once by the global setup
        // for every file here, and only when one of them is selected.
        extends: true,
        test: { name: 'node', include: ['test/node/**/*.test.ts'], globalSetup: ['test/node/global-setup.ts'] },
      },
    ],
  },
});
