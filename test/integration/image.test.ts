// The image `make image` writes (hack/image.sh) runs compiled JavaScript: its entrypoint starts
// /app/dist/main.js with the node flags, V8 flags (NODE_OPTIONS) and malloc arenas bin/breakwater and the Dockerfile use, it carries no
// TypeScript under /app, and its /app tree (production node_modules only), started as the
// image starts it on the same Node binary, loads a --config and proxies. The image's own
// container start is the real-node suite's (test/node: every pod there runs this image).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type FakeProvider } from '../../src/fake/server.ts';
import { TEST_KEY_ENV, upstreamsYaml } from '../support/rig.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
}

interface Image {
  config: ImageConfig;
  /** the layer blobs' paths, base first */
  layers: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'breakwater-image-'));
const root = join(dir, 'root');
let image: Image;
let fake: FakeProvider | undefined;
let child: ChildProcess | undefined;

function sh(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stderr}`);
  return r.stdout;
}

/** The one image in an OCI layout directory: its config and its layer blobs. */
function readLayout(layout: string): Image {
  const blob = (digest: string) => join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  expect(index.manifests).toHaveLength(1);
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const config = (JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { config: ImageConfig }).config;
  return { config, layers: manifest.layers.map((l) => blob(l.digest)) };
}

/** The MALLOC_ARENA_MAX bin/breakwater, hack/image.sh and the Dockerfile start node with, as written. */
function mallocArenas(): { bin: string; imageScript: string; dockerfile: string } {
  const read = (file: string, pattern: RegExp) => pattern.exec(readFileSync(join(ROOT, file), 'utf8'))?.[1] ?? `(no match in ${file})`;
  return {
    bin: read('bin/breakwater', /^MALLOC_ARENA_MAX="\$\{MALLOC_ARENA_MAX:-(\d+)\}"$/m),
    imageScript: read('hack/image.sh', /^MALLOC_ARENAS=(\d+)$/m),
    dockerfile: read('Dockerfile', /^ENV .*\bMALLOC_ARENA_MAX=(\S+)/m),
  };
}

/** The flags NODE_OPTIONS refuses, which bin/breakwater, hack/image.sh and the Dockerfile put before the script. */
function nodeFlags(): { bin: string; imageScript: string; dockerfile: string } {
  const read = (file: string, pattern: RegExp) => pattern.exec(readFileSync(join(ROOT, file), 'utf8'))?.[1] ?? `(no match in ${file})`;
  return {
    bin: read('bin/breakwater', /^NODE_FLAGS="([^"]+)"$/m),
    imageScript: read('hack/image.sh', /^NODE_FLAGS="([^"]+)"$/m),
    dockerfile: read('Dockerfile', /^ENTRYPOINT \["node", "([^"]+)", "\/app\/dist\/main\.js"\]$/m),
  };
}

/** The NODE_OPTIONS bin/breakwater, hack/image.sh and the Dockerfile start node with, as written. */
function v8Flags(): { bin: string; imageScript: string; dockerfile: string } {
  const read = (file: string, pattern: RegExp) => pattern.exec(readFileSync(join(ROOT, file), 'utf8'))?.[1] ?? `(no match in ${file})`;
  return {
    bin: read('bin/breakwater', /^NODE_OPTIONS="([^"$]+)\$\{NODE_OPTIONS/m),
    imageScript: read('hack/image.sh', /^V8_FLAGS="([^"]+)"$/m),
    dockerfile: read('Dockerfile', /^ENV .*\bNODE_OPTIONS=(\S+)/m),
  };
}

beforeAll(() => {
  // Into a directory of this test's own: build/ may hold an archive made from other sources.
  const out = join(dir, 'out');
  sh('bash', ['hack/image.sh', 'breakwater'], { env: { ...process.env, BREAKWATER_IMAGE_OUT: out, BREAKWATER_IMAGE_TAG: 'image-test' }, timeoutMs: 170_000 });
  const layout = join(dir, 'layout');
  mkdirSync(layout);
  sh('tar', ['-xf', join(out, 'breakwater.oci.tar'), '-C', layout]);
  image = readLayout(layout);
  // The /app tree: every layer but the base (Node and its libraries: the same binary as
  // node_modules/.bin/node).
  mkdirSync(root);
  for (const layer of image.layers.slice(1)) sh('tar', ['-xzf', layer, '-C', root]);
}, 180_000);

/** The image's entrypoint and environment, its paths inside `root`, on the pinned node. */
function imageCommand(): { args: string[]; env: NodeJS.ProcessEnv; cwd: string } {
  const [entry, ...entryArgs] = image.config.Entrypoint;
  expect(entry).toBe('/usr/local/bin/node');
  const env = Object.fromEntries(image.config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return { args: entryArgs.map((a) => (a.startsWith('/') ? join(root, a) : a)), env: { ...env, [TEST_KEY_ENV]: 'k' }, cwd: join(root, image.config.WorkingDir) };
}

afterAll(async () => {
  child?.kill('SIGKILL');
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the image make image builds', () => {
  it('starts the compiled entrypoint as user 65532, with the node flags, V8 flags and malloc arenas bin/breakwater and the Dockerfile use', () => {
    const flags = v8Flags();
    expect(flags.bin).toBe('--max-semi-space-size=4');
    expect(flags).toEqual({ bin: flags.bin, imageScript: flags.bin, dockerfile: flags.bin });
    // undici's WebAssembly HTTP parser tiers up late (bin/breakwater says why)
    const node = nodeFlags();
    expect(node.bin).toBe('--wasm-tiering-budget=2000000000');
    expect(node).toEqual({ bin: node.bin, imageScript: node.bin, dockerfile: node.bin });
    expect(image.config.Entrypoint).toEqual(['/usr/local/bin/node', node.bin, '/app/dist/main.js']);
    expect(image.config.Cmd).toEqual(['proxy', '--kubernetes']);
    expect(image.config.User).toBe('65532:65532');
    expect(image.config.Env).toContain('NODE_ENV=production');
    expect(image.config.Env).toContain(`NODE_OPTIONS=${flags.bin}`);
    const arenas = mallocArenas();
    expect(arenas).toEqual({ bin: '1', imageScript: '1', dockerfile: '1' });
    expect(image.config.Env).toContain('MALLOC_ARENA_MAX=1');
  });

  it('holds the compiled tree and no TypeScript source under /app', () => {
    const files = image.layers.flatMap((layer) => sh('tar', ['-tzf', layer]).split('\n')).map((f) => f.replace(/^\.\//, ''));
    expect(files).toContain('app/package.json');
    expect(files).toContain('app/dist/main.js');
    // loaded by URL, not by an import: tsc's specifier rewriting does not reach it
    expect(files).toContain('app/dist/config/sources/parse-worker.js');
    expect(files.filter((f) => f.startsWith('app/src'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('app/') && /\.[mc]?ts$/.test(f))).toEqual([]);
    // the build's freshness record stays in the checkout
    expect(files).not.toContain('app/dist/.inputs');
  });

  it("its /app tree, started as the image starts it, loads a --config, turns ready and proxies an SDK call", async () => {
    fake = await startFake();
    const config = join(dir, 'upstreams.yaml');
    writeFileSync(config, upstreamsYaml([{ name: 'openai', endpoints: [{ name: 'a', url: `${fake.url}/v1` }] }]));
    const { args, env, cwd } = imageCommand();
    child = spawn(NODE, [...args, 'proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const address = (msg: string, field: string) => {
      for (const line of output.split('\n')) {
        if (!line.includes(msg)) continue;
        const value = (JSON.parse(line) as Record<string, unknown>)[field];
        if (typeof value === 'string') return value;
      }
      if (child?.exitCode !== null) throw new Error(`exited ${child?.exitCode}:\n${output}`);
      return undefined;
    };
    const admin = await waitFor('the admin listener', () => address('admin server listening', 'admin'), 20_000);
    const listen = await waitFor('the proxy listener', () => address('proxy listening', 'listen'), 20_000);
    await waitFor('/readyz 200', async () => (await fetch(`http://${admin}/readyz`)).status === 200, 20_000);
    expect(output).toContain('config applied');

    const client = new OpenAI({ baseURL: `http://${listen}/openai`, apiKey: 'app-key', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    expect(fake.stats().requests).toBe(1);
    // the process ran the image's tree, with the image's flags
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.slice(1, 3)).toEqual([nodeFlags().bin, join(root, '/app/dist/main.js')]);
    const environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`NODE_OPTIONS=${v8Flags().bin}`);
    expect(environ).toContain('MALLOC_ARENA_MAX=1');
  });

  it('its /app tree explains a --config the schema refuses through the compiled parse worker, and exits 2', () => {
    // a document that fails the inline check goes to the worker thread (parse-worker.js, loaded
    // by URL) for the explanation
    const config = join(dir, 'refused.yaml');
    writeFileSync(config, upstreamsYaml([{ name: 'odd', api: 'nope' as 'openai', endpoints: [{ name: 'a', url: 'https://api.example.com/v1' }] }]));
    const { args, env, cwd } = imageCommand();
    const r = spawnSync(NODE, [...args, 'proxy', '--config', config, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { cwd, env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim()).toMatch(/^breakwater: invalid config: document 1 \(LLMUpstream "odd"\): spec\.api: /);
  });
});
