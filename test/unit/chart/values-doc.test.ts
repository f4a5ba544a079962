// The README's chart values table (section "Chart values") documents every value in
// charts/breakwater/values.yaml, and names no value that does not exist: a new value without a
// row, or a renamed one, fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..', '..');
const values = parse(readFileSync(join(REPO, 'charts', 'breakwater', 'values.yaml'), 'utf8')) as Record<string, unknown>;
const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

/** Every path in values.yaml down to the leaves (maps, lists and scalars), e.g. controller.resources.requests.cpu. */
function paths(node: unknown, prefix = ''): string[] {
  if (node === null || typeof node !== 'object' || Array.isArray(node) || Object.keys(node).length === 0) return [prefix];
  return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) => paths(v, prefix ? `${prefix}.${k}` : k));
}

/** The value names in the first column of the table under "### Chart values" (`a`, `b[].c`). */
function documented(): string[] {
  const section = readme.split('### Chart values')[1]?.split('\n### ')[0] ?? '';
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  return rows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\[\]\..*$/, '')));
}

describe('README chart values table', () => {
  it('has a table', () => {
    expect(documented().length).toBeGreaterThan(20);
  });

  it('documents every value of values.yaml (a row names the value or a parent of it)', () => {
    const docs = new Set(documented());
    const missing = paths(values).filter((p) => ![...docs].some((d) => p === d || p.startsWith(`${d}.`)));
    expect(missing).toEqual([]);
  });

  it('names only values that exist', () => {
    const leaves = paths(values);
    const stale = documented().filter((d) => !leaves.some((p) => p === d || p.startsWith(`${d}.`)));
    expect(stale).toEqual([]);
  });
});
