// Offline editing in a real browser: page A goes offline (context.setOffline), both pages edit,
// A reloads while still offline and still has its edits (service worker + y-indexeddb), then A
// comes back online and both converge. Prints JSON lines; the last is {"done":true,...}.
//
//   node e2e/js/editor_offline.mjs --base http://127.0.0.1:PORT --doc ID
import { launch, preset, log, fail, parseArgs } from './editor_lib.mjs'

const { base, doc } = parseArgs()
if (!base || !doc) fail('usage: --base URL --doc ID')
const url = `${base}/d/${encodeURIComponent(doc)}`
const WAIT = { timeout: 30000 }

const stateOf = (page) => page.$eval('#status', (e) => ({ state: e.dataset.state, pending: Number(e.dataset.pending), label: e.textContent.trim() }))
const textOf = (page) => page.evaluate(() => window.quire.ytext.toString())
// waitState waits until the status shows one of the given states (the test's only clock is this bound).
const waitState = (page, states, extra = '') => page.waitForFunction(([s, x]) => {
  const e = document.querySelector('#status')
  return e && s.includes(e.dataset.state) && (!x || eval(x)) // eslint-disable-line no-eval
}, [states, extra], WAIT)

const browser = await launch()
try {
  const ctxA = await browser.newContext()
  const ctxB = await browser.newContext()
  await preset(ctxA, 'Alice', '#d1495b')
  await preset(ctxB, 'Bob', '#3a7bd5')
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  for (const [n, p] of [['A', a], ['B', b]]) {
    p.on('pageerror', (e) => log({ page: n, pageerror: e.message }))
  }

  // Watch A's status from inside the page: every state it ever showed, across the reload too.
  await ctxA.addInitScript(() => {
    const seen = JSON.parse(window.sessionStorage.getItem('quire.test.states') || '[]')
    const note = (s) => {
      if (s && seen[seen.length - 1] !== s) {
        seen.push(s)
        window.sessionStorage.setItem('quire.test.states', JSON.stringify(seen))
      }
    }
    new MutationObserver(() => note(document.querySelector('#status')?.dataset.state))
      .observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'], childList: true })
  })

  await a.goto(url)
  await b.goto(url)
  await waitState(a, ['synced'])
  await waitState(b, ['synced'])
  // The service worker must control A before A can reload offline.
  await a.waitForFunction(() => navigator.serviceWorker && navigator.serviceWorker.controller !== null, null, WAIT)

  await a.click('.cm-content')
  await a.keyboard.type('shared start.')
  await b.waitForFunction(() => window.quire.ytext.toString() === 'shared start.', null, WAIT)
  log({ step: 'both online', text: await textOf(b) })

  // --- A goes offline -------------------------------------------------------------------------
  await ctxA.setOffline(true)
  await waitState(a, ['offline'])
  const wsAfterOffline = await a.evaluate(() => ({
    wsconnected: window.quire.provider.wsconnected,
    onLine: navigator.onLine
  }))
  // Nothing reaches the server from A now: the page's own fetch fails.
  const fetchFails = await a.evaluate(() => fetch('/api/docs', { cache: 'no-store' }).then(() => false, () => true))
  log({ step: 'A offline', ...wsAfterOffline, fetchFails, status: await stateOf(a) })
  if (wsAfterOffline.wsconnected) fail('A still has an open WebSocket while offline')
  if (!fetchFails) fail('A can still reach the server after setOffline(true)')

  await a.keyboard.press('Control+End')
  await a.keyboard.type(' [A offline]')
  await b.click('.cm-content')
  await b.keyboard.press('Control+Home')
  await b.keyboard.type('[B online] ')
  // B's edit must not reach A, and A's must not reach B, while A is offline.
  const aText1 = await textOf(a)
  const bText1 = await textOf(b)
  const offlineStatus = await stateOf(a)
  log({ step: 'both edited', aText: aText1, bText: bText1, status: offlineStatus })
  if (offlineStatus.state !== 'offline' || offlineStatus.pending < 1) fail(`A's status while offline with edits: ${JSON.stringify(offlineStatus)}`)
  if (bText1.includes('[A offline]')) fail('A\'s offline edit reached B')

  // --- A reloads while still offline ----------------------------------------------------------
  const resp = await a.reload({ waitUntil: 'load' })
  await a.waitForFunction(() => window.quire && window.quire.ytext.toString().includes('[A offline]'), null, WAIT)
  await waitState(a, ['offline'])
  const afterReload = { text: await textOf(a), status: await stateOf(a), fromServiceWorker: resp ? resp.fromServiceWorker() : null }
  log({ step: 'A reloaded offline', ...afterReload })
  if (afterReload.status.pending < 1) fail(`after the reload A forgot its unsent changes: ${JSON.stringify(afterReload.status)}`)

  // --- A comes back -----------------------------------------------------------------------------
  await ctxA.setOffline(false)
  await waitState(a, ['synced'])
  await a.waitForFunction(() => window.quire.ytext.toString().includes('[B online]'), null, WAIT)
  await b.waitForFunction(() => window.quire.ytext.toString().includes('[A offline]'), null, WAIT)
  await waitState(b, ['synced'])
  const finalA = await textOf(a)
  const finalB = await textOf(b)
  const states = await a.evaluate(() => JSON.parse(window.sessionStorage.getItem('quire.test.states') || '[]'))
  log({ done: true, textA: finalA, textB: finalB, statesA: states, statusA: await stateOf(a), statusB: await stateOf(b) })
} finally {
  await browser.close()
}
