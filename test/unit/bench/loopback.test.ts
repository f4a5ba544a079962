// bench/peers/loopback.ts, preloaded into a peer that cannot be told its listen address (the
// Portkey gateway): a listen() without a host binds 127.0.0.1, not every interface.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PRELOAD = join(import.meta.dirname, '..', '..', '..', 'bench', 'peers', 'loopback.ts');
const listenAndPrint = (listenArgs: string) =>
  `const s = require('node:http').createServer(); s.listen(${listenArgs}, () => { console.log(s.address().address); s.close(); });`;

function addressWith(preload: boolean, listenArgs: string): string {
  const r = spawnSync(process.execPath, [...(preload ? ['--import', PRELOAD] : []), '-e', listenAndPrint(listenArgs)], { encoding: 'utf8', timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('loopback preload', () => {
  it('binds a port-only listen() to 127.0.0.1 (without it: every interface)', () => {
    expect(addressWith(false, '0')).not.toBe('127.0.0.1');
    expect(addressWith(true, '0')).toBe('127.0.0.1');
  });

  it('binds an options listen() without a host to 127.0.0.1 and leaves an explicit host alone', () => {
    expect(addressWith(true, '{ port: 0 }')).toBe('127.0.0.1');
    expect(addressWith(true, "0, '127.0.0.2'")).toBe('127.0.0.2');
  });
});
