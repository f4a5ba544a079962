// Issue 3, test 10: with debug logging on and a key full of characters that tempt escaping,
// the key appears nowhere in logs, error bodies or responses.
import OpenAI from 'openai';
import { writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, post, startRig, waitFor, type Rig, primaryAndSecondary } from '../support/rig.ts';

const KEY = `sk-"quote'\\back<angle>&amp;%25{brace}$dollar|pipe;=+/~\`tick\`-END`;
const APP_KEY = 'sk-app-own-key-must-not-travel';

let rig: Rig;
const captured: string[] = [];

beforeAll(async () => {
  rig = await startRig({
    fakes: 2,
    key: KEY,
    logLevel: 'debug',
    upstreams: ([a, b]) => [
      {
        name: 'openai',
        endpoints: primaryAndSecondary(a!, b!),
        breaker: { volumeThreshold: 2, openDuration: '60s' },
        retry: { budget: { ratio: 1, minPerSecond: 100 } },
      },
    ],
  });
});
afterAll(async () => rig.close());

async function capture(p: Promise<{ status: number; headers: Headers; text: string }>) {
  const r = await p;
  captured.push(String(r.status), JSON.stringify([...r.headers]), r.text);
  return r;
}

describe('secrets', () => {
  it('the provider receives the endpoint key and never the app\'s own key', async () => {
    await capture(post(`${rig.base}/openai/chat/completions`, chatBody(), { authorization: `Bearer ${APP_KEY}` }));
    const recent = rig.fakes[0]!.stats().recent.at(-1)!;
    expect(recent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.stringify(recent.headers)).not.toContain(APP_KEY);
  });

  it('the key appears in no log line, error body, response or debug view', async () => {
    const [primary, secondary] = rig.fakes;
    // a spread of paths that log: account errors (logged loudly), failovers, breaker
    // transitions, a broken stream, bad input, unknown upstream, a rejected reload
    primary!.setFault({ fault: 'status:401', times: 1 });
    await capture(post(`${rig.base}/openai/chat/completions`, chatBody()));
    rig.endpoint('openai', 'primary').breaker.reset();
    primary!.setFault({ fault: '503' });
    for (let i = 0; i < 4; i++) await capture(post(`${rig.base}/openai/chat/completions`, chatBody()));
    secondary!.setFault({ fault: 'status:401' });
    await capture(post(`${rig.base}/openai/chat/completions`, chatBody()));
    secondary!.setFault({ fault: 'reset-mid-stream' });
    await capture(post(`${rig.base}/openai/chat/completions`, chatBody('gpt-4.1', { stream: true })));
    await capture(post(`${rig.base}/openai/chat/completions`, '{broken'));
    await capture(post(`${rig.base}/nope/x`, chatBody()));
    const openai = new OpenAI({ baseURL: `${rig.base}/openai`, apiKey: APP_KEY });
    await openai.chat.completions.create({ model: 'gpt-4.1', messages: [] }).catch((e: unknown) => captured.push(inspect(e, { depth: 5 })));
    writeFileSync(rig.configPath, 'apiVersion: breakwater.dev/v1alpha1\nkind: LLMUpstream\nmetadata: {name: openai}\nspec: {endpoints: []}\n');
    await waitFor(() => rig.logs.some((l) => l.includes('config rejected')), 'rejection');
    captured.push(inspect(rig.proxy.runtime.snapshot, { depth: 10 }), JSON.stringify([...rig.proxy.runtime.snapshot!.upstreams.values()].map((u) => u.config)));
    captured.push(JSON.stringify(rig.endpoint('openai', 'primary').describe(Date.now())));
    captured.push(await rig.proxy.metrics.registry.metrics());

    const everything = [...rig.logs, ...captured].join('\n');
    expect(rig.logs.length).toBeGreaterThan(10);
    expect(everything).toContain('check its API key'); // the loud account-error line was captured
    for (const form of [KEY, JSON.stringify(KEY).slice(1, -1), encodeURIComponent(KEY), 'sk-"quote', 'brace}$dollar', APP_KEY]) {
      expect(everything.includes(form), `found ${form}`).toBe(false);
    }
  });
});
