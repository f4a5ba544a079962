// /dashboard: one self-contained page (inline CSS and JS, nothing fetched from outside the pod;
// the Content-Security-Policy forbids it) that polls /debug/state and shows, per upstream, its
// endpoints with the breaker state in colour, recent error rate and latency, inflight, budget
// left, fallbacks in use, and the readiness verdict with its reason. Data is written with
// textContent only, never as HTML.
import { randomBytes } from 'node:crypto';

export function dashboardCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function dashboardHtml(nonce: string, pollMs = 2000): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Breakwater</title>
<style nonce="${nonce}">
  :root { --closed: #1a7f37; --half: #b35900; --open: #cf222e; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  .verdict { display: flex; align-items: center; gap: 10px; }
  .pill { display: inline-block; min-width: 74px; text-align: center; padding: 2px 10px; border-radius: 999px; color: #fff; font-weight: 600; font-size: 12px; letter-spacing: .04em; }
  .pill.closed, .pill.ready { background: var(--closed); }
  .pill.halfOpen { background: var(--half); }
  .pill.open, .pill.unready { background: var(--open); }
  .pill.held { background: #6e40c9; }
  .pill.neutral { background: var(--muted); }
  .reason { color: var(--muted); max-width: 900px; }
  .meta { color: var(--muted); font-size: 12px; }
  .stale { color: var(--open); font-weight: 600; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  section.upstream { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; }
  section.upstream.down { border-color: var(--open); box-shadow: 0 0 0 1px var(--open); }
  .uhead { display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: baseline; padding: 10px 14px; border-bottom: 1px solid var(--line); }
  .uhead h2 { font-size: 16px; margin: 0; }
  .badge { font-size: 11px; border: 1px solid var(--line); border-radius: 4px; padding: 0 6px; color: var(--muted); }
  .badge.required { border-color: #0969da; color: #0969da; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
  th { font-size: 12px; color: var(--muted); font-weight: 600; }
  td.num { font-variant-numeric: tabular-nums; }
  td.shaping { white-space: normal; max-width: 16em; font-size: 12px; color: #57606a; }
  td.err.bad { color: var(--open); font-weight: 600; }
  tr.endpoint.open td.name { color: var(--open); }
  .fallbacks { padding: 8px 14px; color: var(--muted); font-size: 12px; }
  .fallbacks .used { color: var(--half); font-weight: 600; }
  button { font: inherit; font-size: 12px; padding: 1px 8px; border: 1px solid var(--line); border-radius: 4px; background: #f6f8fa; cursor: pointer; }
  .empty { color: var(--muted); padding: 20px; }
</style>
</head>
<body>
<header>
  <h1>Breakwater</h1>
  <div class="verdict"><span id="ready" class="pill neutral">…</span><span id="ready-reason" class="reason">loading /debug/state</span></div>
  <div class="meta">config <span id="config">–</span></div>
  <div class="meta">liveness <span id="live">–</span></div>
  <div class="meta" id="rejection"></div>
  <div class="meta">updated <span id="updated">never</span> <span id="stale" class="stale"></span></div>
</header>
<main id="upstreams"><div class="empty">waiting for /debug/state</div></main>
<script nonce="${nonce}">
(() => {
  'use strict';
  const POLL_MS = ${Number(pollMs)};
  const LABEL = { closed: 'CLOSED', open: 'OPEN', halfOpen: 'HALF-OPEN' };
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v; else if (k.startsWith('data-')) node.setAttribute(k, v); else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
    return node;
  };
  const dur = (ms) => {
    if (ms < 1000) return Math.round(ms) + 'ms';
    const s = ms / 1000;
    if (s < 120) return s.toFixed(1) + 's';
    const m = s / 60;
    return m < 120 ? m.toFixed(1) + 'm' : (m / 60).toFixed(1) + 'h';
  };
  const pct = (r) => (r == null ? '–' : (r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0) + '%');
  const ms = (v) => (v == null ? '–' : v < 10 ? v.toFixed(1) + 'ms' : Math.round(v) + 'ms');

  async function act(upstream, endpoint, action) {
    if (!confirm(action + ' the breaker of ' + upstream + '/' + endpoint + '?')) return;
    await fetch('/admin/upstreams/' + encodeURIComponent(upstream) + '/endpoints/' + encodeURIComponent(endpoint) + '/' + action, { method: 'POST' });
    poll();
  }

  function endpointRow(u, e, now) {
    const b = e.breaker;
    const held = e.hold != null;
    const stateCell = el('td', { class: 'state' }, el('span', { class: 'pill ' + b.kind, 'data-role': 'breaker-state', title: b.reason || '' }, LABEL[b.kind] || b.kind));
    if (held) stateCell.append(' ', el('span', { class: 'pill held', title: e.hold.reason }, 'HELD ' + dur(e.hold.until - now)));
    let detail = '';
    if (b.kind === 'open') detail = b.reason + ' · half-open in ' + dur(Math.max(0, b.until - now));
    else if (b.kind === 'halfOpen') detail = 'ramp step ' + (b.step + 1) + ' · ' + b.succeeded + ' ok of ' + b.admitted + ' admitted';
    const r = e.recent;
    const modelHolds = Object.keys(e.modelHolds || {});
    return el('tr', { class: 'endpoint ' + b.kind, 'data-upstream': u.name, 'data-endpoint': e.name, 'data-state': b.kind, 'data-held': String(held) },
      el('td', { class: 'name' }, e.name),
      stateCell,
      el('td', { class: 'num' }, dur(b.timeInStateMs)),
      el('td', { class: 'detail' }, detail + (modelHolds.length ? ' · models held: ' + modelHolds.join(', ') : '')),
      el('td', { class: 'num err' + (r.errorRate != null && r.errorRate >= 0.1 ? ' bad' : ''), 'data-role': 'error-rate' }, pct(r.errorRate)),
      el('td', { class: 'num' }, r.attempts),
      el('td', { class: 'num', 'data-role': 'latency' }, ms(r.ttfbMeanMs) + ' / ' + ms(r.ttfbP90Ms)),
      el('td', { class: 'num' }, b.window.failures + '/' + b.window.fires),
      el('td', { class: 'num', 'data-role': 'inflight' }, e.inflight + (e.slots && e.slots.limit != null ? ' / ' + e.slots.limit : '')),
      el('td', { class: 'shaping', 'data-role': 'shaping' }, shaping(e, now)),
      el('td', {}, e.priority + ' · ' + e.weight),
      el('td', {},
        el('button', { onclick: () => act(u.name, e.name, 'open'), title: 'force the breaker open' }, 'open'), ' ',
        el('button', { onclick: () => act(u.name, e.name, 'reset'), title: 'close the breaker and drop holds' }, 'reset')),
    );
  }

  /** the endpoint's own limits and checks: rate-limit room, latency estimate, last probe */
  function shaping(e, now) {
    const parts = [];
    const rl = e.rateLimit;
    if (rl) {
      if (rl.available.requests != null) parts.push('rpm left ' + rl.available.requests + '/' + rl.requestsPerMinute);
      if (rl.available.tokens != null) parts.push('tpm left ' + rl.available.tokens + '/' + rl.tokensPerMinute);
    }
    if (e.ttfbEwmaMs) parts.push('ewma ' + ms(e.ttfbEwmaMs));
    const hc = e.healthCheck;
    if (hc && hc.last) parts.push('probe ' + hc.last.result + ' ' + dur(now - hc.last.at) + ' ago');
    else if (hc && hc.nextProbeAt) parts.push('probe in ' + dur(Math.max(0, hc.nextProbeAt - now)));
    return parts.join(' · ') || '–';
  }

  function upstreamSection(u, now) {
    const head = el('div', { class: 'uhead' },
      el('h2', {}, u.name),
      el('span', { class: 'badge' }, u.api),
      u.required ? el('span', { class: 'badge required' }, 'required') : el('span', { class: 'badge' }, 'optional'),
      el('span', { 'data-role': 'available' }, (u.availableEndpoints ?? '?') + '/' + u.endpoints.length + ' endpoints available'),
      el('span', { 'data-role': 'budget' }, 'retry budget left: ' + u.budget.left),
      el('span', { 'data-role': 'queue' }, 'queue ' + u.queue.depth + '/' + u.queue.maxSize + (u.queue.depth ? ' (high ' + u.queue.waiting.high + ', normal ' + u.queue.waiting.normal + ', low ' + u.queue.waiting.low + ')' : '')),
      u.cache ? el('span', { 'data-role': 'cache' }, 'cache ' + u.cache.entries + ' entries, ' + Math.round(u.cache.bytes / 1024) + '/' + Math.round(u.cache.maxBytes / 1024) + ' KiB, ' + u.cache.hits + ' hits / ' + (u.cache.hits + u.cache.misses) + ' lookups') : '',
      el('span', { class: 'meta' }, Object.entries(u.recent.requests).map(([k, v]) => k + ' ' + v).join(' · ') || 'no requests in window'),
    );
    if (u.available === false) head.append(el('span', { class: 'pill open' }, 'NO ENDPOINT ' + dur(u.unavailableForMs)));
    const table = el('table', {},
      el('thead', {}, el('tr', {}, ...['endpoint', 'breaker', 'in state', '', 'errors', 'attempts', 'ttfb mean / p90', 'window fail/fires', 'inflight / slots', 'limits · latency · probe', 'prio · weight', ''].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...u.endpoints.map((e) => endpointRow(u, e, now))),
    );
    const chains = Object.entries(u.fallbacks);
    const used = u.recent.fallbacks;
    const fb = el('div', { class: 'fallbacks', 'data-role': 'fallbacks' });
    if (chains.length === 0) fb.append('no fallbacks configured');
    else fb.append('fallbacks: ' + chains.map(([m, c]) => m + ' → ' + c.map((s) => s.model).join(' → ')).join('; '));
    if (used.length > 0) fb.append(' · ', el('span', { class: 'used' }, 'in use: ' + used.map((f) => f.from + ' → ' + f.to + ' ×' + f.count).join(', ')));
    return el('section', { class: 'upstream' + (u.available === false ? ' down' : ''), 'data-upstream': u.name }, head, table, fb);
  }

  function render(s) {
    const ready = $('ready');
    ready.className = 'pill ' + (s.readiness.ready ? 'ready' : 'unready');
    ready.textContent = s.readiness.ready ? 'READY' : 'UNREADY';
    $('ready-reason').textContent = s.readiness.reason + ' (readiness=' + s.readiness.policy + ')';
    $('config').textContent = s.config.loaded ? 'generation ' + s.config.generation + ' from ' + s.config.source : 'not loaded';
    $('live').textContent = s.liveness.live ? 'ok (loop delay p99 ' + s.liveness.eventLoopDelay.p99 + 'ms)' : s.liveness.reason;
    $('rejection').textContent = s.config.lastRejection ? 'last rejected config: ' + s.config.lastRejection.message : '';
    const main = $('upstreams');
    main.replaceChildren(...(s.upstreams.length ? s.upstreams.map((u) => upstreamSection(u, s.now)) : [el('div', { class: 'empty' }, 'no upstreams configured')]));
    $('updated').textContent = new Date(s.now).toLocaleTimeString() + ' (window ' + dur(s.recentWindowMs) + ')';
    $('stale').textContent = '';
    document.body.dataset.loaded = 'true';
  }

  let timer;
  async function poll() {
    clearTimeout(timer);
    try {
      const res = await fetch('/debug/state', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
    } catch (err) {
      $('stale').textContent = 'cannot reach /debug/state: ' + err.message;
    }
    timer = setTimeout(poll, POLL_MS);
  }
  poll();
})();
</script>
</body>
</html>
`;
}
