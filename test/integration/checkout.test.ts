// bin/breakwater in a checkout runs the compiled build/dist only while it was built from exactly
// the checkout's sources, and the TypeScript sources otherwise (no build yet, or an edit since),
// with the image's V8 flags first in NODE_OPTIONS and the caller's after them. Checked on a copy
// of the checkout (src/, bin/, hack/build.sh, package.json, the tsconfigs; node_modules linked),
// so the real build/dist is never touched; which file runs is read from `sh -x`'s trace of the
// script's exec line and from the started process's /proc entries.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { TEST_KEY_ENV, upstreamsYaml } from '../support/rig.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'breakwater-checkout-'));
const co = join(dir, 'checkout');
let fake: FakeProvider | undefined;

/** The file bin/breakwater execs for `--help`, and what that printed. */
function runs(env: NodeJS.ProcessEnv = process.env): { main: string; stdout: string; trace: string } {
  const r = spawnSync('sh', ['-x', join(co, 'bin', 'breakwater'), '--help'], { encoding: 'utf8', env, timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  const exec = r.stderr.split('\n').find((l) => l.startsWith('+ exec '));
  expect(exec, r.stderr).toBeDefined();
  const main = exec!.split(' ').find((w) => w.startsWith(`${co}/`) && !w.startsWith(`${co}/node_modules/`))!;
  return { main: main.slice(co.length + 1), stdout: r.stdout, trace: r.stderr };
}

function build(...args: string[]): number | null {
  const r = spawnSync('bash', [join(co, 'hack', 'build.sh'), ...args], { encoding: 'utf8', timeout: 170_000 });
  if (r.status !== 0 && args.length === 0) throw new Error(`hack/build.sh exited ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  return r.status;
}

beforeAll(() => {
  mkdirSync(join(co, 'hack'), { recursive: true });
  for (const p of ['src', 'bin', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'hack/build.sh']) cpSync(join(ROOT, p), join(co, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(co, 'node_modules'));
});

afterAll(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bin/breakwater in a checkout', () => {
  it('runs the sources when nothing was built', () => {
    expect(build('--check')).toBe(1);
    const r = runs();
    expect(r.main).toBe('src/main.ts');
    expect(r.stdout).toContain('breakwater proxy');
  });

  it('runs build/dist once hack/build.sh compiled the sources, and the sources while they differ from what was compiled', () => {
    const fromSources = runs().stdout;
    build();
    expect(build('--check')).toBe(0);
    const compiled = runs();
    expect(compiled.main).toBe('build/dist/main.js');
    expect(compiled.stdout).toBe(fromSources);

    const clock = join(co, 'src', 'clock.ts');
    const original = readFileSync(clock, 'utf8');
    appendFileSync(clock, '// an edit after the build\n');
    expect(build('--check')).toBe(1);
    expect(runs().main).toBe('src/main.ts');
    // contents decide, not times: the edit undone (the file is still newer than the build)
    writeFileSync(clock, original);
    expect(runs().main).toBe('build/dist/main.js');
    // a new source file counts as an edit too
    writeFileSync(join(co, 'src', 'extra.ts'), 'export const extra = 1;\n');
    expect(runs().main).toBe('src/main.ts');
    rmSync(join(co, 'src', 'extra.ts'));
    expect(runs().main).toBe('build/dist/main.js');
  });

  it("starts a proxy from the build with the image's V8 flags first in NODE_OPTIONS and the caller's after them", async () => {
    build();
    fake = await startFake();
    const config = join(dir, 'upstreams.yaml');
    writeFileSync(config, upstreamsYaml([{ name: 'openai', endpoints: [{ name: 'a', url: `${fake.url}/v1` }] }]));
    const image = /^V8_FLAGS="([^"]+)"$/m.exec(readFileSync(join(ROOT, 'hack', 'image.sh'), 'utf8'))?.[1];
    expect(image).toMatch(/^--max-semi-space-size=\d+$/);
    const child = spawn(join(co, 'bin', 'breakwater'), ['proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
      env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=16', [TEST_KEY_ENV]: 'k' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const admin = await waitFor(
        'the admin listener',
        () => {
          if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${output}`);
          const line = output.split('\n').find((l) => l.includes('admin server listening'));
          return line ? (JSON.parse(line) as { admin: string }).admin : undefined;
        },
        20_000,
      );
      await waitFor('/readyz 200', async () => (await fetch(`http://${admin}/readyz`)).status === 200, 20_000);
      // bin/breakwater execs: the pid is node's own
      expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')).toContain(join(co, 'build', 'dist', 'main.js'));
      // for V8 flags the last one wins: the caller's 16 over the image's
      const options = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('NODE_OPTIONS='));
      expect(options).toBe(`NODE_OPTIONS=${image} --max-semi-space-size=16`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
