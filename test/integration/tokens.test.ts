// Token usage reported by providers (JSON `usage`, the last SSE chunk, Anthropic
// message_start/message_delta) is counted per endpoint in breakwater_tokens_total.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startRig, type Rig } from '../support/rig.ts';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({
    fakes: 1,
    upstreams: ([a]) => [
      { name: 'openai', endpoints: [{ name: 'a', url: `${a!.url}/v1` }] },
      { name: 'anthropic', api: 'anthropic', endpoints: [{ name: 'a', url: a!.url }] },
    ],
  });
});
afterAll(async () => rig.close());

async function tokens(upstream: string, kind: string): Promise<number> {
  const metric = await rig.proxy.metrics.tokens.get();
  return metric.values.filter((v) => v.labels.upstream === upstream && v.labels.kind === kind).reduce((s, v) => s + v.value, 0);
}

describe('token usage', () => {
  it('counts OpenAI JSON and streamed usage', async () => {
    const body = { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] };
    await post(`${rig.base}/openai/chat/completions`, JSON.stringify(body), { 'x-fake-events': '7' });
    expect(await tokens('openai', 'output')).toBe(7);
    await post(`${rig.base}/openai/chat/completions`, JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }), { 'x-fake-events': '3' });
    expect(await tokens('openai', 'output')).toBe(10);
    expect(await tokens('openai', 'input')).toBeGreaterThan(0);
  });

  it('counts Anthropic JSON and streamed usage', async () => {
    const body = { model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };
    await post(`${rig.base}/anthropic/v1/messages`, JSON.stringify(body), { 'x-fake-events': '4' });
    expect(await tokens('anthropic', 'output')).toBe(4);
    await post(`${rig.base}/anthropic/v1/messages`, JSON.stringify({ ...body, stream: true }), { 'x-fake-events': '6' });
    expect(await tokens('anthropic', 'output')).toBe(10);
    expect(await tokens('anthropic', 'input')).toBeGreaterThan(0);
  });
});
