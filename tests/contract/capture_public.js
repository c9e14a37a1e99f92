// td-js-sdk as the oracle for the p13n `/public/<db>/<table>` path: loads the real npm package
// (td-js-sdk 4.4.3, pinned in package.json), calls its `fetchPersonalization` under Node with a
// minimal fake browser, captures the request it makes instead of sending it, and writes it as JSON
// (default target/contract/public-request.json). Nothing goes over the network.
//
//   node tests/contract/capture_public.js [OUT.json]
//
// The key and token are placeholders that replay_public.py swaps for the simulator's. A browser
// adds the Origin header itself (fetch does not let a page set it); replay_public.py adds it too.
'use strict'
const assert = require('node:assert')
const fs = require('node:fs')
const path = require('node:path')

const out = process.argv[2] || path.join(__dirname, '..', '..', 'target', 'contract', 'public-request.json')
const KEY = '1/WRITE_KEY_PLACEHOLDER'
const TOKEN = '1/2/0123456789abcdef0123456789abcdef'
const ENDPOINT = 'us01.p13n.in.treasuredata.com'
const CONFIG = { endpoint: ENDPOINT, database: 'rt_events', table: 'web_personalization', token: TOKEN }
// What a page passes: the user's key and some context. Signed mode keeps td_client_id (anonymous
// mode strips it, see fetchPersonalization).
const DATA = { td_client_id: 'vip_user_001', page: '/products/42' }

// The fake browser: just what the SDK touches when it starts and in fetchPersonalization.
const captured = []
const location = {
  hostname: 'shop.example.com', protocol: 'https:', href: 'https://shop.example.com/products/42', search: ''
}
globalThis.location = location
globalThis.document = {
  cookie: '',
  location,
  referrer: '',
  title: 'a product',
  readyState: 'complete',
  documentElement: {}
}
globalThis.window = globalThis
globalThis.fetch = (url, init) => {
  captured.push({ url, init })
  return Promise.resolve({ ok: true, statusText: 'OK', text: () => Promise.resolve('{"offers": {}}') })
}

const Treasure = require('td-js-sdk/lib/treasure.js')
const sdkVersion = require('td-js-sdk/package.json').version
assert.strictEqual(sdkVersion, '4.4.3')

const td = new Treasure({ database: 'rt_events', writeKey: KEY, startInSignedMode: true, logging: false })
td.fetchPersonalization(CONFIG, DATA, answer => {
  assert.strictEqual(captured.length, 1, 'fetchPersonalization made exactly one request')
  assert.deepStrictEqual(answer, { offers: {} }, 'the SDK read the answer as JSON')
  const { url, init } = captured[0]
  const u = new URL(url)
  assert.strictEqual(u.host, ENDPOINT)
  const request = {
    sdk: `td-js-sdk ${sdkVersion}`,
    method: init.method,
    path: u.pathname,
    query: u.search || null,
    headers: init.headers,
    body: init.body,
    fetch: { keepalive: init.keepalive, credentials: init.credentials },
    // what the browser adds itself: the page's origin
    origin: `${location.protocol}//${location.hostname}`,
    placeholders: { key: KEY, token: TOKEN }
  }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(request, null, 2) + '\n')
  console.log(`capture_public: ${request.method} ${request.path} ${request.body} -> ${out}`)
}, err => {
  console.error('capture_public: fetchPersonalization failed:', err)
  process.exit(1)
})
