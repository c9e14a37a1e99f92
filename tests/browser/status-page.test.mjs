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

// The exporter keeps probing while the test reads, so the page is compared with a /status.json
// taken around its load: the sparklines record by record (each point carries its run's time),
// the section bars with a snapshot that held still from before the load to after it.
const SPARK_RUNS = 60; // src/web/page/svg.rs
const MAX_BARS = 16;
const BAR_LEN = 140;

async function statusJson(page) {
  return (await page.request.get(`${BASE}/status.json`)).json();
}

// What the page draws, read from the DOM.
function readPictures() {
  const split = (s) => (s === '' ? [] : s.split(','));
  const spark = [...document.querySelectorAll('svg.spark')].map((s) => ({
    target: s.dataset.target,
    row: s.closest('tr')?.dataset.target ?? null,
    points: split(s.dataset.points ?? '').map((v) => (v === '' ? null : Number(v))),
    ok: split(s.dataset.ok ?? '').map((v) => v === '1'),
    at: split(s.dataset.at ?? '').map(Number),
    max: Number(s.dataset.max),
    fails: s.querySelectorAll('circle.fail').length,
    drawn: s.querySelectorAll('polyline.latency, circle.latency').length,
    box: (({ width, height }) => [width, height])(s.getBoundingClientRect()),
  }));
  const bars = [...document.querySelectorAll('svg.bars')].map((s) => ({
    kind: s.classList.contains('shares') ? 'shares' : 'probe-sections',
    service: s.dataset.service,
    row: s.closest('tr')?.dataset.service ?? null,
    omitted: Number(s.dataset.omitted),
    box: (({ width, height }) => [width, height])(s.getBoundingClientRect()),
    bars: [...s.querySelectorAll('g.bar')].map((g) => ({
      section: g.dataset.section,
      share: Number(g.dataset.share),
      count: g.dataset.count === undefined ? null : Number(g.dataset.count),
      width: Number(g.querySelectorAll('rect')[1]?.getAttribute('width')),
    })),
  }));
  const empty = [...document.querySelectorAll('.spark-empty, .bars-empty')].map(
    (e) => `${e.className} ${e.dataset.target ?? e.dataset.service}`,
  );
  return { spark, bars, empty, scripts: document.querySelectorAll('script').length };
}

// The bars a service should show: largest share first, then by name, at most MAX_BARS.
function expectedBars(rows) {
  const sorted = rows
    .filter((r) => Number.isFinite(r.share) && r.share >= 0 && r.share <= 1)
    .sort((a, b) => b.share - a.share || (a.section < b.section ? -1 : a.section > b.section ? 1 : 0));
  return { bars: sorted.slice(0, MAX_BARS), omitted: Math.max(0, sorted.length - MAX_BARS) };
}

function sameBars(drawn, want) {
  const got = drawn.bars.map((b) => ({ section: b.section, share: b.share, count: b.count }));
  const exp = want.bars.map((b) => ({ section: b.section, share: b.share, count: b.count ?? null }));
  const widths = drawn.bars.filter((b) => Math.abs(b.width - b.share * BAR_LEN) > 0.051);
  const ok = JSON.stringify(got) === JSON.stringify(exp) && drawn.omitted === want.omitted && widths.length === 0;
  return {
    ok,
    detail: `page ${JSON.stringify(got)} omitted ${drawn.omitted}\nstatus.json ${JSON.stringify(exp)} omitted ${want.omitted}${
      widths.length ? `\nbar widths off: ${JSON.stringify(widths)}` : ''
    }`,
  };
}

async function pictures(page) {
  let snap = null;
  let after = null;
  for (let i = 0; i < 10 && !snap; i++) {
    const before = await statusJson(page);
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    after = await statusJson(page);
    if (JSON.stringify(before.sections) === JSON.stringify(after.sections)) snap = after;
  }
  check('/status.json held still around a page load (sections)', snap !== null);
  snap ??= after;
  const drawn = await page.evaluate(readPictures);
  check('the page has no script elements', drawn.scripts === 0, `${drawn.scripts} script elements`);

  // Sparklines: one per target with results, in its row, record by record as in /status.json.
  const withData = snap.targets.filter((t) => t.recent.length > 0);
  check(
    `a sparkline for each of the ${withData.length} targets with results, and no other`,
    withData.length >= EXPECT_TARGETS.length && drawn.spark.length === withData.length,
    `sparklines: ${drawn.spark.map((s) => s.target).join(', ')}\nempty: ${drawn.empty.join(', ')}`,
  );
  let failuresMarked = 0;
  for (const t of withData) {
    const s = drawn.spark.find((x) => x.target === t.id);
    if (!check(`${t.id}: sparkline in its row`, s !== undefined && s.row === t.id, JSON.stringify(s?.row))) continue;
    const n = s.at.length;
    const last = t.recent.findIndex((r) => r.at === s.at[n - 1]);
    const want = last < 0 ? [] : t.recent.slice(Math.max(0, last + 1 - SPARK_RUNS), last + 1);
    const wantPoints = want.map((r) => r.duration_seconds);
    const finite = wantPoints.filter((v) => v !== null);
    check(
      `${t.id}: sparkline draws the last ${n} results of /status.json (time, latency, ok)`,
      n > 0 &&
        s.points.length === n &&
        s.ok.length === n &&
        JSON.stringify(s.at) === JSON.stringify(want.map((r) => r.at)) &&
        JSON.stringify(s.points) === JSON.stringify(wantPoints) &&
        JSON.stringify(s.ok) === JSON.stringify(want.map((r) => r.ok)) &&
        s.max === (finite.length ? Math.max(...finite) : 0),
      `page at ${JSON.stringify(s.at.slice(-3))} points ${JSON.stringify(s.points.slice(-3))} ok ${JSON.stringify(s.ok.slice(-3))} max ${s.max}\n` +
        `json at ${JSON.stringify(want.map((r) => r.at).slice(-3))} points ${JSON.stringify(wantPoints.slice(-3))} ok ${JSON.stringify(want.map((r) => r.ok).slice(-3))} (last at index ${last} of ${t.recent.length})`,
    );
    const failed = s.ok.filter((ok) => !ok).length;
    failuresMarked += s.fails;
    check(
      `${t.id}: ${failed} failed runs marked, a line drawn, ${s.box.join('×')} px`,
      s.fails === failed && s.drawn === 1 && s.box[0] === 180 && s.box[1] === 32,
      `marks ${s.fails}, lines ${s.drawn}, box ${s.box}`,
    );
  }
  const failSpark = drawn.spark.find((x) => x.target === FAIL_TARGET);
  check(`${FAIL_TARGET}: its sparkline marks failures`, (failSpark?.fails ?? 0) > 0, `marks ${failSpark?.fails}`);
  check('failures are marked somewhere', failuresMarked > 0);

  // Section bars: per service the logs window's shares and the sections its probes got.
  const services = snap.sections ?? [];
  check('/status.json lists the sections of each service', services.length > 0, JSON.stringify(snap.sections));
  let sharesSeen = 0;
  let probesSeen = 0;
  for (const sv of services) {
    const key = `${sv.parent_segment}/${sv.service}`;
    const row = drawn.bars.filter((b) => b.row === key);
    const shares = row.find((b) => b.kind === 'shares');
    const probes = row.find((b) => b.kind === 'probe-sections');
    if (sv.shares.length > 0) {
      sharesSeen++;
      if (check(`${key}: logs-window share bars`, shares !== undefined && shares.service === key, JSON.stringify(row))) {
        check(`${key}: share bars match /status.json`, ...Object.values(sameBars(shares, expectedBars(sv.shares))));
      }
    } else {
      check(`${key}: no share bars without shares`, shares === undefined, JSON.stringify(shares));
    }
    const total = sv.probe_sections.reduce((a, c) => a + c.count, 0);
    const asShares = sv.probe_sections
      .filter((c) => c.count > 0)
      .map((c) => ({ section: c.section, share: c.count / total, count: c.count }));
    if (asShares.length > 0) {
      probesSeen++;
      if (check(`${key}: probe-section bars`, probes !== undefined && probes.service === key, JSON.stringify(row))) {
        check(`${key}: probe-section bars match /status.json`, ...Object.values(sameBars(probes, expectedBars(asShares))));
        check(
          `${key}: bars ${probes.box.join('×')} px (330 wide, 16 per bar)`,
          probes.box[0] === 330 && probes.box[1] === 16 * probes.bars.length,
        );
      }
    } else {
      check(`${key}: no probe-section bars without sections`, probes === undefined, JSON.stringify(probes));
    }
  }
  // The counts themselves: the sections of the service's kept probe results in /status.json.
  for (const sv of services) {
    const counts = {};
    for (const t of snap.targets) {
      if (t.poller !== 'probe' || t.parent_segment !== sv.parent_segment || t.service !== sv.service) continue;
      for (const r of t.recent) if (r.section !== null) counts[r.section] = (counts[r.section] ?? 0) + 1;
    }
    const want = Object.keys(counts).sort().map((section) => ({ section, count: counts[section] }));
    const got = sv.probe_sections.map(({ section, count }) => ({ section, count }));
    check(
      `${sv.parent_segment}/${sv.service}: probe_sections count the probes' kept results`,
      JSON.stringify(got) === JSON.stringify(want),
      `probe_sections ${JSON.stringify(sv.probe_sections)}\nfrom targets ${JSON.stringify(want)}`,
    );
  }
  check('at least one service has probe-section bars drawn', probesSeen > 0);
  check('at least one service has logs-window shares drawn', sharesSeen > 0, JSON.stringify(services.map((s) => s.shares)));
  check(
    'bars are drawn only for services in /status.json',
    drawn.bars.every((b) => services.some((sv) => `${sv.parent_segment}/${sv.service}` === b.service)),
    JSON.stringify(drawn.bars.map((b) => b.service)),
  );
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

  // ---- the pictures: a sparkline per target, section bars per service --------------------
  console.log('pictures');
  await pictures(page);

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
