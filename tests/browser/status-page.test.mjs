// Browser test of the exporter's status page: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core (which never downloads a browser).
//
// Run by scripts/browser-test.sh, which starts the simulator and the exporter and passes:
//   EXPORTER_URL      http://127.0.0.1:PORT of the exporter
//   SIM_URL           http://127.0.0.1:PORT of the simulator (the request URL shown on the detail page)
//   EXPECT_TARGETS    comma-separated target ids that must each have a row
//   FAIL_TARGET       the target id the scenario makes fail with FAIL_REASON / FAIL_STATUS
//   FAIL_REQUEST_URL  the URL the failing probe requests
//   FAIL_REASON, FAIL_STATUS
//   SECRETS           newline-separated values that must never appear in any page
//   OUT_DIR           where the screenshots go
//   USER_DATA_DIR     a fresh, empty Chromium profile directory
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   T0_MS             when the whole run started (ms since the epoch), for the final line

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name, dflt) => {
  const v = process.env[name] ?? dflt;
  if (v === undefined || v === '') {
    console.error(`browser: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const BASE = env('EXPORTER_URL').replace(/\/$/, '');
const SIM_URL = env('SIM_URL').replace(/\/$/, '');
const EXPECT_TARGETS = env('EXPECT_TARGETS').split(',').map((s) => s.trim()).filter(Boolean);
const FAIL_TARGET = env('FAIL_TARGET');
const FAIL_REQUEST_URL = env('FAIL_REQUEST_URL');
const FAIL_REASON = env('FAIL_REASON', 'unavailable');
const FAIL_STATUS = env('FAIL_STATUS', '503');
const SECRETS = env('SECRETS').split('\n').filter(Boolean);
const OUT_DIR = env('OUT_DIR');
const USER_DATA_DIR = env('USER_DATA_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

mkdirSync(OUT_DIR, { recursive: true });

let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`  ok    ${name}`);
  } else {
    failed++;
    console.log(`  FAIL  ${name}${detail ? `\n        ${detail.replace(/\n/g, '\n        ')}` : ''}`);
  }
  return ok;
}

// A check whose body throws (a locator timing out, say) fails without ending the run.
async function step(name, fn) {
  try {
    const r = await fn();
    if (r === undefined || r === true) return check(name, true);
    if (r === false) return check(name, false);
    return check(name, r.ok, r.detail);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e).replace(/\x1b\[[0-9;]*m/g, '');
    return check(name, false, msg.split('\n').filter((l) => l.trim()).slice(0, 4).join('\n'));
  }
}

const snippet = (s, n = 300) => JSON.stringify(s.length > n ? `${s.slice(0, n)}…` : s);

function noSecrets(where, html) {
  for (const [i, secret] of SECRETS.entries()) {
    const at = html.indexOf(secret);
    check(
      `${where}: raw HTML does not contain secret #${i + 1}`,
      at < 0,
      at < 0 ? '' : `found at offset ${at}: ${snippet(html.slice(Math.max(0, at - 80), at + secret.length + 20))}`,
    );
  }
}

const started = Date.now();
const context = await chromium.launchPersistentContext(USER_DATA_DIR, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1440, height: 900 },
  timeout: 60_000,
});

try {
  const browserVersion = context.browser()?.version() ?? '(persistent context)';
  console.log(`browser: Chromium ${browserVersion} at ${CHROMIUM}, exporter ${BASE}`);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);

  // Everything the page asks for, to notice requests that are not the page itself.
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${m.text()} (${m.location()?.url ?? '?'})`));
  // Chromium asks for /favicon.ico by itself; the exporter has none and answers 404 (counted in
  // td_pz_bad_requests_total{reason="not_found"}). Noted, not failed: the page is not at fault.
  const isFavicon = (u) => new URL(u).pathname === '/favicon.ico';
  const errorResponses = []; // the page's own requests (the favicon fetch is not among them)
  page.on('response', (r) => r.status() >= 400 && errorResponses.push(`${r.status()} ${r.url()}`));

  // ---- the status page -------------------------------------------------------------------
  console.log('status page');
  const resp = await page.goto(`${BASE}/`, { waitUntil: 'load' });
  check('GET / answers 200', resp?.status() === 200, `status ${resp?.status()}`);
  check(
    'GET / is text/html',
    (resp?.headers()['content-type'] ?? '').startsWith('text/html'),
    resp?.headers()['content-type'],
  );
  const title = await page.title();
  check('title contains td-pz-exporter', title.includes('td-pz-exporter'), `title ${JSON.stringify(title)}`);
  const indexHtml = (await resp?.text()) ?? '';
  noSecrets('status page', indexHtml);
  noSecrets('status page (DOM)', await page.content());

  const rowIds = await page.locator('tbody tr[data-target]').evaluateAll((rows) =>
    rows.map((r) => r.getAttribute('data-target')),
  );
  for (const id of EXPECT_TARGETS) {
    check(`row for ${id}`, (await page.locator(`tr[data-target="${id}"]`).count()) === 1, `rows: ${rowIds.join(', ')}`);
  }
  check(
    `exactly ${EXPECT_TARGETS.length} target rows`,
    rowIds.length === EXPECT_TARGETS.length,
    `rows: ${rowIds.join(', ')}`,
  );

  const failRow = page.locator(`tr[data-target="${FAIL_TARGET}"]`);
  await step(`${FAIL_TARGET}: last result shows FAIL ${FAIL_REASON}`, async () => {
    // Column 4 is "Last result".
    const cell = (await failRow.locator('td').nth(3).innerText()).trim();
    return { ok: cell.includes('FAIL') && cell.includes(FAIL_REASON), detail: `cell ${JSON.stringify(cell)}` };
  });
  await step(`${FAIL_TARGET}: row is marked failing (class fail)`, async () => {
    const cls = (await failRow.getAttribute('class')) ?? '';
    return { ok: cls.split(/\s+/).includes('fail'), detail: `class ${JSON.stringify(cls)}` };
  });
  await step(`${FAIL_TARGET}: HTTP column shows ${FAIL_STATUS}`, async () => {
    const cell = (await failRow.locator('td').nth(6).innerText()).trim();
    return { ok: cell === FAIL_STATUS, detail: `cell ${JSON.stringify(cell)}` };
  });
  await step('"failing now" card counts exactly the one failing target', async () => {
    const cards = await page.locator('.summary .card').allInnerTexts();
    const card = cards.find((c) => c.includes('failing now')) ?? '';
    return { ok: /^\s*1\s/.test(card), detail: `cards ${JSON.stringify(cards)}` };
  });
  for (const id of EXPECT_TARGETS.filter((t) => t !== FAIL_TARGET)) {
    await step(`${id}: last result OK (the fault is scoped to one persona)`, async () => {
      const cell = (await page.locator(`tr[data-target="${id}"] td`).nth(3).innerText()).trim();
      return { ok: cell === 'OK', detail: `cell ${JSON.stringify(cell)}` };
    });
  }
  await step('every details link points at /target?id=<its row>', async () => {
    const bad = await page.locator('tbody tr[data-target]').evaluateAll((rows) =>
      rows
        .map((r) => {
          const a = r.querySelector('a');
          const href = a ? a.getAttribute('href') : null;
          const u = href ? new URL(href, location.href) : null;
          const good = u && u.pathname === '/target' && u.searchParams.get('id') === r.getAttribute('data-target');
          return good ? null : `${r.getAttribute('data-target')}: ${href}`;
        })
        .filter(Boolean),
    );
    return { ok: bad.length === 0, detail: bad.join('\n') };
  });

  await page.screenshot({ path: path.join(OUT_DIR, 'status-page.png'), fullPage: true });
  console.log(`  saved ${path.join(OUT_DIR, 'status-page.png')}`);

  // ---- the failing target's detail view, reached by clicking -----------------------------
  console.log(`detail view of ${FAIL_TARGET}`);
  const [detailResp] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/target?id=')),
    failRow.getByRole('link', { name: 'details' }).click(),
  ]);
  await page.waitForLoadState('load');
  check('clicking details opens /target?id=…', new URL(page.url()).pathname === '/target', page.url());
  check(
    'the detail URL names the failing target',
    new URL(page.url()).searchParams.get('id') === FAIL_TARGET,
    page.url(),
  );
  check('detail answers 200', detailResp.status() === 200, `status ${detailResp.status()}`);
  const detailHtml = await detailResp.text();
  noSecrets('detail view', detailHtml);
  noSecrets('detail view (DOM)', await page.content());
  check('detail title contains td-pz-exporter', (await page.title()).includes('td-pz-exporter'), await page.title());

  await step(`#last-result shows FAIL ${FAIL_REASON}`, async () => {
    const t = (await page.locator('#last-result').innerText()).trim();
    return { ok: t.includes('FAIL') && t.includes(FAIL_REASON), detail: JSON.stringify(t) };
  });
  await step('#hint is shown and says something', async () => {
    const t = (await page.locator('#hint').innerText()).trim();
    return { ok: /^Hint:\s*\S.{10,}/.test(t), detail: JSON.stringify(t) };
  });
  const text = await page.locator('main').innerText();
  await step('a check of the last run failed', async () => {
    const n = await page.locator('table').first().locator('.bad', { hasText: 'failed' }).count();
    return { ok: n >= 1, detail: `failed checks: ${n}` };
  });
  check(
    `the request line shows POST ${FAIL_REQUEST_URL}`,
    text.includes(`POST ${FAIL_REQUEST_URL}`),
    `main text: ${snippet(text, 1500)}`,
  );
  check('the request shows Authorization: TD1 <redacted>', text.includes('Authorization: TD1 <redacted>'));
  check(`the response shows HTTP ${FAIL_STATUS}`, text.includes(`HTTP ${FAIL_STATUS}`));
  check('the request URL is the simulator', text.includes(SIM_URL));
  await step('history lists the failure', async () => {
    const rows = await page.locator('tr.fail').count();
    return { ok: rows >= 1, detail: `failed history rows: ${rows}` };
  });

  await page.screenshot({ path: path.join(OUT_DIR, 'target-detail.png'), fullPage: true });
  console.log(`  saved ${path.join(OUT_DIR, 'target-detail.png')}`);

  // ---- the other pages a browser can reach, for secrets ----------------------------------
  console.log('secrets elsewhere');
  for (const id of EXPECT_TARGETS) {
    const r = await page.request.get(`${BASE}/target?id=${encodeURIComponent(id)}`);
    check(`detail of ${id} answers 200`, r.status() === 200, `status ${r.status()}`);
    noSecrets(`detail of ${id}`, await r.text());
  }
  for (const p of ['/config', '/status.json']) {
    const r = await page.request.get(`${BASE}${p}`);
    check(`GET ${p} answers 200`, r.status() === 200, `status ${r.status()}`);
    noSecrets(p, await r.text());
  }

  const realErrors = consoleErrors.filter((e) => !/\(.*\/favicon\.ico\)$/.test(e));
  check('no console errors (besides /favicon.ico)', realErrors.length === 0, realErrors.join('\n'));
  const badResponses = errorResponses.filter((e) => !isFavicon(e.split(' ')[1]));
  check('no 4xx/5xx responses (besides /favicon.ico)', badResponses.length === 0, badResponses.join('\n'));
  const favicon = consoleErrors.length - realErrors.length;
  if (favicon > 0) {
    const m = await page.request.get(`${BASE}/metrics`);
    const line = (await m.text()).split('\n').find((l) => l.startsWith('td_pz_bad_requests_total{reason="not_found"}'));
    console.log(`  note  the browser's request(s) for /favicon.ico got 404 (${favicon}x); now ${line ?? 'no not_found counter'}`);
  }
  const foreign = requests.filter((u) => !u.startsWith(BASE));
  check('the pages load nothing from elsewhere', foreign.length === 0, foreign.join('\n'));
} catch (e) {
  check('the run finished', false, String(e && e.stack ? e.stack : e));
} finally {
  await context.close();
}

const secs = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const t0 = Number(process.env.T0_MS) || 0;
console.log(`browser: ${passed} passed, ${failed} failed (browser ${secs(started)}${t0 ? `, in all ${secs(t0)}` : ''})`);
process.exit(failed === 0 ? 0 : 1);
