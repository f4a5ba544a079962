// Test 5 of issue 5: the alert rules pass `promtool check rules`, and `promtool test rules`
// proves each alert fires on the series that should fire it and stays silent on a healthy one.
// promtool comes from Debian's `prometheus` package; without it this test FAILS (never skips).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const FILES = join(import.meta.dirname, '..', '..', '..', 'charts', 'breakwater', 'files');
const RULES = join(FILES, 'alerts.yaml');
const TESTS = join(FILES, 'alerts.test.yaml');

const ALERTS = [
  'BreakwaterBreakerOpen',
  'BreakwaterUpstreamNoEndpoint',
  'BreakwaterFallbackRateHigh',
  'BreakwaterRetryBudgetExhausted',
  'BreakwaterConfigRejected',
  'BreakwaterConfigWatchUnhealthy',
  'BreakwaterUnready',
];

interface Rule { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleTest { name: string; alert_rule_test: { alertname: string; eval_time: string; exp_alerts: unknown[] }[] }

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (run.error) {
    throw new Error(`promtool could not run (${run.error.message}): install it with \`apt-get install -y prometheus\` (Debian) — the alert tests need it`);
  }
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const tests = (parse(readFileSync(TESTS, 'utf8')) as { tests: RuleTest[] }).tests;

describe('alert rules (charts/breakwater/files/alerts.yaml)', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool('check', 'rules', RULES);
    expect(status, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  it('pass promtool test rules (a firing and a silent case per alert)', () => {
    const { status, output } = promtool('test', 'rules', TESTS);
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('are exactly the alerts the issue asks for, each with a severity and a description that says what to do', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([...ALERTS].sort());
    for (const rule of rules) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(warning|critical)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toMatch(/What to do: /);
    }
  });

  it('each have a firing case and a separate silent case in alerts.test.yaml', () => {
    for (const alert of ALERTS) {
      const groups = tests.filter((t) => t.alert_rule_test.some((c) => c.alertname === alert));
      const fires = groups.some((t) => t.alert_rule_test.some((c) => c.alertname === alert && c.exp_alerts.length > 0));
      const silent = groups.some((t) => t.alert_rule_test.every((c) => c.alertname !== alert || c.exp_alerts.length === 0));
      expect(fires, `${alert} has no firing case`).toBe(true);
      expect(silent, `${alert} has no silent (healthy) case`).toBe(true);
    }
  });

  it('only use metrics Breakwater exports', async () => {
    const metrics = createMetrics();
    const exported = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(m.name + suffix);
    }
    for (const rule of rules) {
      for (const name of rule.expr.match(/breakwater_[a-z_]+/g) ?? []) expect(exported.has(name), `${rule.alert} uses ${name}`).toBe(true);
    }
  });
});
