// Bytes allocated per call of a function in this process: V8's sampling heap profiler through
// node:inspector (the same measure bench/run.ts takes of a whole proxy, collected objects
// included), for the micro-benchmarks' before/after comparisons. Sampled: ±10 % at small sizes.
import { Session } from 'node:inspector/promises';

interface HeapNode {
  selfSize: number;
  children: HeapNode[];
}

function total(n: HeapNode): number {
  return n.children.reduce((sum, c) => sum + total(c), n.selfSize);
}

export async function bytesPerCall(fn: () => unknown, reps: number): Promise<number> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let r = 0; r < reps; r++) fn();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    return total(profile.head) / reps;
  } finally {
    session.disconnect();
  }
}
