// Optional vitest globalSetup for the e2e suite: builds (or finds) the control
// plane binaries once, before any test file starts, so that no file's
// beforeAll has to wait for a cold build. Use it from a vitest config:
//   test: { globalSetup: ['test/e2e/global-setup.ts'] }
// Each file still calls startControlPlane() in beforeAll and stop() in afterAll.
import { ensureBinaries } from './harness/binaries.ts';

export default async function setup(): Promise<void> {
  // Workers inherit the environment, so they skip even the cache check.
  process.env['BREAKWATER_CONTROL_PLANE_BIN'] = await ensureBinaries();
}
