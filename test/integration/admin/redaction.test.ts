// Issue 8, defect 10: /debug/state showed the password of a rejected endpoint URL. Every URL it
// shows goes through the one redacting formatter: no user info, no query values.
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { getJson, startStack, type Stack } from './helpers.ts';

const doc = (url: string) => `apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  endpoints: [{ name: a, url: "${url}" }]
`;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('/debug/state', () => {
  it('shows a rejected config\'s reason without the password of its endpoint URL', async () => {
    stack = await startStack({ fakes: ['a'], yaml: (u) => doc(`${u.a}/v1?api-version=KEY-d10`) });
    writeFileSync(stack.configPath, doc('http://user:PASS-d10@127.0.0.1:99999/v1'));
    await stack.proxy.source!.reload();
    const { status, body } = await getJson(`${stack.adminUrl}/debug/state`);
    expect(status).toBe(200);
    const state = body as { config: { lastRejection: { message: string } | null }; upstreams: { endpoints: { url: string }[] }[] };
    expect(state.config.lastRejection?.message).toContain('spec.endpoints[0].url');
    expect(state.upstreams[0]!.endpoints[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\?api-version=redacted$/);
    const text = JSON.stringify(body);
    expect(text).not.toContain('PASS-d10');
    expect(text).not.toContain('KEY-d10');
  });
});
