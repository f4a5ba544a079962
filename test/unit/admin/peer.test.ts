import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, originAllowed } from '../../../src/admin/peer.ts';
import { safeUrl } from '../../../src/admin/state.ts';

describe('isLoopbackAddress', () => {
  it('accepts 127.0.0.0/8, ::1 and IPv4-mapped 127.x', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) expect(isLoopbackAddress(a), a).toBe(true);
  });
  it('refuses everything else, including look-alikes', () => {
    for (const a of [undefined, '', '10.0.0.1', '128.0.0.1', '::ffff:10.1.2.3', '::2', 'fe80::1', '0.0.0.0', '127.0.0.1.evil', '1127.0.0.1', '::ffff:128.0.0.1', 'localhost']) expect(isLoopbackAddress(a), String(a)).toBe(false);
  });
});

describe('originAllowed', () => {
  it('lets tools without Origin and pages this admin server served (Origin equal to Host) through', () => {
    for (const [o, h] of [[undefined, 'localhost:7879'], [undefined, undefined], ['http://localhost:7879', 'localhost:7879'], ['http://127.0.0.1:7879', '127.0.0.1:7879'], ['http://[::1]:7879', '[::1]:7879'], ['http://localhost', 'localhost'], ['http://LOCALHOST:7879', 'localhost:7879']] as const) expect(originAllowed(o, h), `${o} ${h}`).toBe(true);
  });
  it('refuses other origins, DNS-rebound names and garbage', () => {
    for (const o of ['http://evil.example', 'http://127.0.0.1.nip.io:7879', 'http://localhost.evil.example', 'null', 'not a url']) expect(originAllowed(o, 'localhost:7879'), o).toBe(false);
  });
  it('refuses a page from another loopback port or another loopback name than the Host', () => {
    for (const [o, h] of [['http://localhost:3000', 'localhost:7879'], ['http://127.0.0.1:7879', 'localhost:7879'], ['http://localhost:7879', undefined], ['file://localhost:7879', 'localhost:7879']] as const) expect(originAllowed(o, h), `${o} ${h}`).toBe(false);
  });
});

describe('safeUrl', () => {
  it('drops user info and query values', () => {
    expect(safeUrl('https://user:pass@api.example.com/v1?key=sk-123&x=1')).toBe('https://api.example.com/v1?key=redacted&x=redacted');
    expect(safeUrl('http://127.0.0.1:8080/v1')).toBe('http://127.0.0.1:8080/v1');
  });
});

describe('hostAllowed (DNS rebinding)', () => {
  it('accepts loopback Host headers and refuses any other name', async () => {
    const { hostAllowed } = await import('../../../src/admin/peer.ts');
    for (const h of ['localhost:7879', '127.0.0.1:7879', '[::1]:7879', 'localhost']) expect(hostAllowed(h)).toBe(true);
    for (const h of ['evil.example.com:7879', 'rebind.attacker.test', '10.0.0.5:7879']) expect(hostAllowed(h)).toBe(false);
  });
});
