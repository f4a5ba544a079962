// Test 4 of issue 5: the dashboard in headless Chromium (Debian's chromium, driven by
// playwright-core). A scenario with one endpoint open and one closed renders with the right
// colours and labels, the page fetches nothing but its own origin, and a screenshot is written
// to test-output/dashboard.png for review.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, post, startStack, waitFor, type Stack } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT = join(import.meta.dirname, '..', '..', '..', 'test-output');
const RED = 'rgb(207, 34, 46)';
const GREEN = 'rgb(26, 127, 55)';

const yaml = (u: Record<string, string>) => `
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: chat }
spec:
  required: true
  endpoints:
    - { name: primary, url: "${u.a}/v1" }
    - { name: secondary, url: "${u.b}/v1", priority: 1, maxConcurrent: 8, rateLimit: { requestsPerMinute: 600 } }
  breaker: { openDuration: 5m, volumeThreshold: 100 }
  queue: { maxSize: 32, maxWait: 2s }
  cache: { enabled: true, maxBytes: 1048576 }
  retry: { backoff: { initial: 1ms, max: 1ms, jitter: none }, budget: { ratio: 1, minPerSecond: 10 } }
  fallbacks:
    - { model: gpt-big, chain: [ { model: gpt-small } ] }
---
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: embeddings }
spec:
  endpoints:
    - { name: vllm, url: "${u.a}/v1" }
`;

let stack: Stack;
let browser: Browser;
let page: Page;
const requested: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  stack = await startStack({ fakes: ['a', 'b'], yaml, unreadyAfterMs: 1000 });
  const a = stack.fakes.a!;
  // traffic: successes, failovers off a 503ing primary, and one fallback
  for (let i = 0; i < 4; i++) expect((await chat(stack, 'chat', 'gpt-big')).status).toBe(200);
  a.setFault({ fault: '503', times: 3 });
  for (let i = 0; i < 3; i++) expect((await chat(stack, 'chat', 'gpt-big')).headers.get('x-breakwater-endpoint')).toBe('secondary');
  a.setFault({ fault: '503', model: 'gpt-big', times: 1 });
  stack.fakes.b!.setFault({ fault: '503', model: 'gpt-big', times: 1 });
  expect((await chat(stack, 'chat', 'gpt-big')).headers.get('x-breakwater-fallback-model')).toBe('gpt-small');
  // the scenario: primary open (by an operator), secondary closed
  expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/primary/open`)).status).toBe(200);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const res = await page.goto(`${stack.adminUrl}/dashboard`);
  expect(res?.status()).toBe(200);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const row = (endpoint: string) => `tr.endpoint[data-upstream="chat"][data-endpoint="${endpoint}"]`;
const pillColour = (endpoint: string) => page.$eval(`${row(endpoint)} [data-role="breaker-state"]`, (el) => (globalThis as any).getComputedStyle(el).backgroundColor as string);

describe('dashboard', () => {
  it('shows the open endpoint in red and the closed one in green, with their labels', async () => {
    expect(await page.getAttribute(row('primary'), 'data-state')).toBe('open');
    expect(await page.textContent(`${row('primary')} [data-role="breaker-state"]`)).toBe('OPEN');
    expect(await pillColour('primary')).toBe(RED);
    expect(await page.textContent(`${row('primary')} td.detail`)).toMatch(/opened by an operator · half-open in/);

    expect(await page.getAttribute(row('secondary'), 'data-state')).toBe('closed');
    expect(await page.textContent(`${row('secondary')} [data-role="breaker-state"]`)).toBe('CLOSED');
    expect(await pillColour('secondary')).toBe(GREEN);
  });

  it('shows recent error rate, latency, inflight, budget, fallbacks in use and the readiness verdict', async () => {
    // primary: 4 ok + 3 failed + 1 failed (gpt-big) + 1 ok (the fallback) = 4 of 9 failed
    expect(await page.textContent(`${row('primary')} [data-role="error-rate"]`)).toBe('44%');
    expect(await page.textContent(`${row('secondary')} [data-role="error-rate"]`)).toBe('25%');
    expect(await page.textContent(`${row('secondary')} [data-role="latency"]`)).toMatch(/^[0-9.]+ms \/ [0-9.]+ms$/);
    expect(await page.textContent(`${row('secondary')} [data-role="inflight"]`)).toBe('0 / 8');
    expect(await page.textContent(`${row('primary')} [data-role="inflight"]`)).toBe('0');
    // the traffic-shaping state: rate-limit room (what the secondary was sent is spent), the latency estimate, the queue and the cache
    const spent = stack.fakes.b!.stats().requests;
    expect(await page.textContent(`${row('secondary')} [data-role="shaping"]`)).toMatch(new RegExp(`^rpm left ${600 - spent}/600 · ewma [0-9.]+ms$`));
    const section = 'section.upstream[data-upstream="chat"]';
    expect(await page.textContent(`${section} [data-role="available"]`)).toBe('1/2 endpoints available');
    expect(await page.textContent(`${section} [data-role="budget"]`)).toMatch(/^retry budget left: [0-9]+$/);
    expect(await page.textContent(`${section} [data-role="queue"]`)).toBe('queue 0/32');
    expect(await page.textContent(`${section} [data-role="cache"]`)).toBe('cache 0 entries, 0/1024 KiB, 0 hits / 0 lookups');
    expect(await page.textContent(`${section} [data-role="fallbacks"]`)).toBe('fallbacks: gpt-big → gpt-small · in use: gpt-big → gpt-small ×1');
    expect(await page.textContent('#ready')).toBe('READY');
    expect(await page.$eval('#ready', (el) => (globalThis as any).getComputedStyle(el).backgroundColor as string)).toBe(GREEN);
    expect(await page.textContent('#ready-reason')).toMatch(/every required upstream has an available endpoint/);
    expect(await page.textContent('section.upstream[data-upstream="embeddings"] h2')).toBe('embeddings');

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true });
  });

  it('refreshes from /debug/state: both endpoints open turns the verdict red with its reason', async () => {
    expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/secondary/open`)).status).toBe(200);
    await page.waitForSelector('#ready.unready', { timeout: 15_000 });
    expect(await page.textContent('#ready')).toBe('UNREADY');
    expect(await pillColour('secondary')).toBe(RED);
    expect(await page.$eval('#ready', (el) => (globalThis as any).getComputedStyle(el).backgroundColor as string)).toBe(RED);
    expect(await page.textContent('#ready-reason')).toMatch(/required upstream "chat" has had no available endpoint/);
    await page.screenshot({ path: join(OUTPUT, 'dashboard-unready.png'), fullPage: true });

    expect((await post(`${stack.adminUrl}/admin/upstreams/chat/endpoints/primary/reset`)).status).toBe(200);
    await page.waitForSelector('#ready.ready', { timeout: 15_000 });
    expect(await pillColour('primary')).toBe(GREEN);
  });

  it('fetched nothing outside its own origin and ran without errors (CSP intact)', async () => {
    await waitFor('a few polls', () => requested.filter((u) => u.endsWith('/debug/state')).length >= 3, 15_000);
    const origin = new URL(stack.adminUrl).origin;
    expect(requested.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
