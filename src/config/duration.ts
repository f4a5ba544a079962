// Go-style durations ("250ms", "1m30s") to milliseconds. Used only when compiling config,
// never on the request path.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /([0-9]+)(ms|s|m|h)/g;
const WHOLE = /^([0-9]+(ms|s|m|h))+$/;

export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new Error(`"${text}" is not a duration (use e.g. 250ms, 30s, 5m)`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return total;
}

export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
