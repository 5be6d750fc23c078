// The editor opened with ?token=... passes the token on: as the WebSocket's ?token= (the provider's
// params) and as "Authorization: Bearer" on its API calls; with it, the page syncs and its edits
// reach the server; "Copy link" copies the document's address without the token. With --ro-token, a page opened with a read-only token is read-only and says
// so; a page opened without a token says the server refused it (and why) instead of
// "reconnecting" forever. Prints JSON lines; the last is {"done":true,...}.
//
//   node e2e/js/editor_token.mjs --base http://127.0.0.1:PORT --doc ID --token JWT --text TEXT [--ro-token JWT]
import { launch, preset, log, fail, parseArgs } from './editor_lib.mjs'

const { base, doc, token, text, 'ro-token': roToken } = parseArgs()
if (!base || !doc || !token || !text) fail('usage: --base URL --doc ID --token JWT --text TEXT')
const WAIT = { timeout: 30000 }

const browser = await launch()
try {
  const ctx = await browser.newContext()
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  await preset(ctx, 'Tokened', '#2a9d8f')
  const page = await ctx.newPage()
  page.on('pageerror', (e) => log({ pageerror: e.message }))
  const api = [] // API requests and whether they carried the token
  page.on('request', (r) => {
    const u = new URL(r.url())
    if (u.pathname.startsWith('/api/')) api.push({ path: u.pathname, auth: r.headers().authorization === `Bearer ${token}` })
  })
  const sockets = []
  page.on('websocket', (ws) => sockets.push(ws.url()))

  await page.goto(`${base}/d/${encodeURIComponent(doc)}?token=${encodeURIComponent(token)}`)
  await page.waitForSelector('#status[data-state=synced]', WAIT)
  await page.click('.cm-content')
  await page.keyboard.type(text)
  await page.waitForSelector('#status[data-state=synced][data-pending="0"]', WAIT)
  // The link to the list keeps the token, so the person keeps their access there.
  const home = await page.getAttribute('#home-link', 'href')
  const bad = sockets.filter((u) => new URL(u).searchParams.get('token') !== token)
  if (sockets.length === 0 || bad.length) fail(`WebSocket URLs without the token: ${JSON.stringify(sockets)}`)
  if (api.length === 0 || api.some((r) => !r.auth)) fail(`API calls without the bearer token: ${JSON.stringify(api)}`)
  if (home !== `/?token=${encodeURIComponent(token)}`) fail(`home link ${home} drops the token`)
  // Copy link: the document's address, without the sender's own token.
  await page.click('#copy-link')
  await page.waitForSelector('#copy-link[data-copied=yes]', WAIT)
  const copied = await page.evaluate(() => navigator.clipboard.readText())
  if (copied !== `${base}/d/${encodeURIComponent(doc)}`) fail(`Copy link copied ${JSON.stringify(copied)}`)
  const written = await page.evaluate(() => window.quire.ytext.toString())
  log({ step: 'read-write', sockets, api, home, copied, text: written })

  // Without a token: refused, and the page says why.
  const anon = await (await browser.newContext()).newPage()
  await anon.goto(`${base}/d/${encodeURIComponent(doc)}`)
  await anon.waitForSelector('#status[data-state=denied]', WAIT)
  const denied = await anon.$eval('#status', (e) => e.textContent.trim())
  const anonText = await anon.evaluate(() => window.quire.ytext.toString())
  log({ step: 'no token', status: denied, text: anonText })
  if (anonText !== '') fail(`a page without a token got the text ${JSON.stringify(anonText)}`)

  let readOnly = null
  if (roToken) {
    const ctx2 = await browser.newContext()
    await preset(ctx2, 'Reader', '#5c6bc0')
    const ro = await ctx2.newPage()
    await ro.goto(`${base}/d/${encodeURIComponent(doc)}?token=${encodeURIComponent(roToken)}`)
    await ro.waitForSelector('#status[data-state=synced]', WAIT)
    await ro.waitForFunction((t) => window.quire.ytext.toString() === t, written, WAIT)
    await ro.click('.cm-content')
    await ro.keyboard.type('the reader types')
    readOnly = {
      status: await ro.$eval('#status', (e) => e.textContent.trim()),
      ariaReadOnly: await ro.$eval('.cm-content', (e) => e.getAttribute('aria-readonly')),
      text: await ro.evaluate(() => window.quire.ytext.toString())
    }
    log({ step: 'read-only', ...readOnly })
    if (readOnly.text !== written) fail(`the read-only page changed its text to ${JSON.stringify(readOnly.text)}`)
    if (!/read-only/i.test(readOnly.status)) fail(`the read-only page's status says ${JSON.stringify(readOnly.status)}`)
  }
  log({ done: true, sockets, api, home, text: written, denied, readOnly })
} finally {
  await browser.close()
}
