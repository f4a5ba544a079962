// An API key never prints: not through JSON, util.inspect, String(), template literals or pino.
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/config/runtime.ts';
import { createLogger } from '../../../src/telemetry/log.ts';

const KEY = 'sk-live-4f7c2a9e1b';

describe('Secret', () => {
  const secret = new Secret(KEY);

  it('hands the value out only through reveal()', () => {
    expect(secret.reveal()).toBe(KEY);
  });

  it.each([
    ['JSON.stringify', () => JSON.stringify(secret)],
    ['JSON.stringify of a holder', () => JSON.stringify({ auth: { header: 'authorization', value: secret } })],
    ['util.inspect', () => inspect(secret)],
    ['util.inspect of a deep holder', () => inspect({ a: { b: { c: { value: secret } } } }, { depth: Infinity, showHidden: true })],
    ['util.inspect of a Map', () => inspect(new Map([['k', secret]]))],
    ['String()', () => String(secret)],
    ['a template literal', () => `key=${secret}`],
    ['string concatenation', () => 'key=' + secret],
    ['util.format %s %o %O %j', () => format('%s %o %O %j', secret, secret, secret, { secret })],
    ['Object.entries and spread', () => JSON.stringify([Object.entries(secret), { ...secret }])],
    ['structuredClone', () => inspect(structuredClone({ secret }))],
  ])('does not print through %s', (_label, print) => {
    const text = print();
    expect(text).not.toContain(KEY);
  });

  it('prints as [redacted]', () => {
    expect(String(secret)).toBe('[redacted]');
    expect(JSON.stringify(secret)).toBe('"[redacted]"');
    expect(inspect(secret)).toBe('[redacted]');
  });

  it('does not print through a pino log line', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ level: 'info', destination });
    log.info({ auth: { value: secret }, key: secret, err: new Error(`bad ${secret}`) }, `using ${secret}`);
    log.flush?.();
    const text = lines.join('');
    expect(text).toContain('[redacted]');
    expect(text).not.toContain(KEY);
  });

  it('compares by value without revealing it', () => {
    expect(secret.equals(new Secret(KEY))).toBe(true);
    expect(secret.equals(new Secret('other'))).toBe(false);
    expect(secret.equals(undefined)).toBe(false);
  });
});
