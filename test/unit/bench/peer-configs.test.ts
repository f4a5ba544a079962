// The configs the benchmark gives each peer for a list of fake providers (bench/lib/peer-configs.ts):
// the first provider is the primary, a second becomes the peer's own failover target, and the
// Breakwater config is one that Breakwater's own compiler accepts with the endpoints in order.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { breakwaterConfig, litellmConfig, nginxConfig, portkeyConfig, portkeyHeaders } from '../../../bench/lib/peer-configs.ts';
import { findNginx } from '../../../bench/lib/nginx.ts';
import { compileConfig } from '../../../src/config/compile.ts';
import { envOrFileAuth, parseYamlStream } from '../../../src/config/sources/file.ts';

const A = 'http://127.0.0.1:18001/v1';
const B = 'http://127.0.0.1:18002/v1';

describe('Breakwater config', () => {
  it('compiles with Breakwater\'s own config compiler: the primary first, the secondary at a later priority', () => {
    const config = compileConfig(parseYamlStream(breakwaterConfig([A, B]), 'bench.yaml'), envOrFileAuth, 'test', 0);
    const up = config.upstreams.get('openai')!;
    expect(up.endpoints.map((e) => [e.url, e.priority])).toEqual([
      [A, 0],
      [B, 1],
    ]);
  });

  it('with one provider has one endpoint', () => {
    const config = compileConfig(parseYamlStream(breakwaterConfig([A]), 'bench.yaml'), envOrFileAuth, 'test', 0);
    expect(config.upstreams.get('openai')!.endpoints.map((e) => e.url)).toEqual([A]);
  });
});

describe('Portkey config', () => {
  it('points one target at the fake as an OpenAI custom host', () => {
    expect(portkeyConfig([A])).toEqual({ provider: 'openai', api_key: expect.any(String), custom_host: A });
  });

  it('falls back from the primary to the secondary, in that order, and travels as the x-portkey-config header', () => {
    const c = portkeyConfig([A, B]);
    expect(c).toMatchObject({ strategy: { mode: 'fallback' }, targets: [{ provider: 'openai', custom_host: A }, { provider: 'openai', custom_host: B }] });
    expect(JSON.parse(portkeyHeaders([A, B])['x-portkey-config']!)).toEqual(c);
  });
});

describe('LiteLLM config', () => {
  it('serves the benchmark model from the primary and falls back to a model group on the secondary', () => {
    const c = parse(litellmConfig([A, B])) as {
      model_list: Array<{ model_name: string; litellm_params: { model: string; api_base: string } }>;
      litellm_settings: { fallbacks: Array<Record<string, string[]>> };
    };
    expect(c.model_list.map((m) => [m.model_name, m.litellm_params.model, m.litellm_params.api_base])).toEqual([
      ['gpt-4.1-mini', 'openai/gpt-4.1-mini', A],
      ['gpt-4.1-mini-fallback1', 'openai/gpt-4.1-mini', B],
    ]);
    expect(c.litellm_settings.fallbacks).toEqual([{ 'gpt-4.1-mini': ['gpt-4.1-mini-fallback1'] }]);
  });

  it('has no fallbacks with one provider', () => {
    const c = parse(litellmConfig([A])) as { model_list: unknown[]; litellm_settings: Record<string, unknown> };
    expect(c.model_list).toHaveLength(1);
    expect(c.litellm_settings.fallbacks).toBeUndefined();
  });
});

describe('nginx config', () => {
  const two = nginxConfig('/tmp/x', 18000, [{ host: '127.0.0.1', port: 18001 }, { host: '127.0.0.1', port: 18002 }], false);

  it('listens on loopback only and marks the secondary as backup, retrying POSTs on 429 and 5xx', () => {
    expect(two).toMatch(/listen 127\.0\.0\.1:18000;/);
    expect(two).toMatch(/server 127\.0\.0\.1:18001 max_fails=1 fail_timeout=10s;/);
    expect(two).toMatch(/server 127\.0\.0\.1:18002 backup;/);
    expect(two).toMatch(/proxy_next_upstream error timeout http_429 http_500 http_502 http_503 http_504 non_idempotent;/);
  });

  it('has no failover directives with one upstream', () => {
    const one = nginxConfig('/tmp/x', 18000, [{ host: '127.0.0.1', port: 18001 }], false);
    expect(one).not.toMatch(/backup|proxy_next_upstream/);
  });

  const nginx = findNginx();
  it.skipIf(nginx === undefined)('is accepted by nginx -t', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
    try {
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(dir, 18000, [{ host: '127.0.0.1', port: 18001 }, { host: '127.0.0.1', port: 18002 }], process.getuid?.() === 0));
      const r = spawnSync(nginx!, ['-t', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { encoding: 'utf8', timeout: 10_000 });
      expect(r.stderr).toContain('test is successful');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
