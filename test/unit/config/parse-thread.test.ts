// The reload parser's worker thread: same verdicts as the inline parser, and a file too big or
// too slow to parse is refused as a ConfigError while the process carries on.
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { ConfigError } from '../../../src/config/compile.ts';
import { readConfigDocuments } from '../../../src/config/sources/parse.ts';
import { parseInWorker } from '../../../src/config/sources/parse-thread.ts';

const upstream = (name: string) => `apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: ${name} }
spec:
  endpoints: [{ name: a, url: "https://api.openai.com/v1" }]
`;

async function refusal(job: Promise<unknown>): Promise<ConfigError> {
  try {
    await job;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseInWorker', () => {
  it('returns the validated documents, an empty one kept as undefined', async () => {
    const docs = await parseInWorker({ text: `${upstream('a')}---\n---\n${upstream('b')}`, fileName: 'u.yaml' }, { clock: systemClock }).result;
    expect(docs.map((d) => (d as { metadata: { name: string } } | undefined)?.metadata.name)).toEqual(['a', undefined, 'b']);
  });

  it('rejects with the same ConfigError the inline parser throws', async () => {
    for (const text of [upstream('Bad_Name'), '', `${upstream('a')}  a: [\n`]) {
      const inline = await refusal((async () => readConfigDocuments(text, 'u.yaml'))());
      const error = await refusal(parseInWorker({ text, fileName: 'u.yaml' }, { clock: systemClock }).result);
      expect({ ...error, message: error.message }).toEqual({ ...inline, message: inline.message });
    }
  });

  it('refuses a file that needs more than the worker\'s heap, as too complex', async () => {
    const text = `list:\n${'  - a\n'.repeat(170_000)}`;
    const error = await refusal(parseInWorker({ text, fileName: 'u.yaml' }, { clock: systemClock, heapMb: 16 }).result);
    expect(error).toMatchObject({ document: 'u.yaml', path: '(file)' });
    expect(error.detail).toBe('parsing needed more than 16 MiB; refused as too complex');
  }, 60_000);

  it('refuses a parse that outlives its time limit', async () => {
    const error = await refusal(parseInWorker({ text: upstream('a'), fileName: 'u.yaml' }, { clock: systemClock, timeoutMs: 1 }).result);
    expect(error.detail).toBe('parsing took longer than 0.001 s; refused as too complex');
  });
});
