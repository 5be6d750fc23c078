// Two people in one document, in real Chromium: they type at the same time and end with the same
// text; Alice's undo removes only her own typing; Alice's cursor shows up on Bob's page with her name and color; a screenshot of the two
// editors side by side is written to --shots. Prints JSON lines; the last is {"done":true,...}.
//
//   node e2e/js/editor_collab.mjs --base http://127.0.0.1:PORT --doc ID --shots DIR
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { launch, preset, log, fail, parseArgs } from './editor_lib.mjs'

const { base, doc, shots } = parseArgs()
if (!base || !doc || !shots) fail('usage: --base URL --doc ID --shots DIR')
const url = `${base}/d/${encodeURIComponent(doc)}`
const WAIT = { timeout: 30000 }
const ALICE = { name: 'Alice', color: '#d1495b', rgb: 'rgb(209, 73, 91)' }
const BOB = { name: 'Bob', color: '#3a7bd5', rgb: 'rgb(58, 123, 213)' }
// What each types: long enough that the two streams of keystrokes really interleave.
const TEXT_A = 'Alice types at the end of the document, one key at a time.'
const TEXT_B = 'Bob types at the start, at the very same moment. '

const browser = await launch()
try {
  const viewport = { width: 640, height: 420 }
  const ctxA = await browser.newContext({ viewport })
  const ctxB = await browser.newContext({ viewport })
  await preset(ctxA, ALICE.name, ALICE.color)
  await preset(ctxB, BOB.name, BOB.color)
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  for (const [n, p] of [['A', a], ['B', b]]) p.on('pageerror', (e) => log({ page: n, pageerror: e.message }))

  await Promise.all([a.goto(url), b.goto(url)])
  for (const p of [a, b]) await p.waitForSelector('#status[data-state=synced]', WAIT)
  // Each sees the other in the "who is here" bar.
  await a.waitForSelector(`#people .person:not(.me) >> text=${BOB.name}`, WAIT)
  await b.waitForSelector(`#people .person:not(.me) >> text=${ALICE.name}`, WAIT)

  await a.click('.cm-content')
  await a.keyboard.type('The middle line.\n')
  await b.waitForFunction(() => window.quire.ytext.toString() === 'The middle line.\n', null, WAIT)
  await a.keyboard.press('Control+End')
  await b.click('.cm-content')
  await b.keyboard.press('Control+Home')

  // Both type at once; the delays make the keystrokes of the two pages interleave.
  await Promise.all([
    a.keyboard.type(TEXT_A, { delay: 15 }),
    b.keyboard.type(TEXT_B, { delay: 15 })
  ])

  const same = () => a.evaluate(() => window.quire.ytext.toString()).then(async (ta) => ta === await b.evaluate(() => window.quire.ytext.toString()))
  await a.waitForFunction((want) => window.quire.ytext.toString().length === want, TEXT_A.length + TEXT_B.length + 17, WAIT)
  await b.waitForFunction((want) => window.quire.ytext.toString().length === want, TEXT_A.length + TEXT_B.length + 17, WAIT)
  for (const p of [a, b]) await p.waitForSelector('#status[data-state=synced][data-pending="0"]', WAIT)
  const textA = await a.evaluate(() => window.quire.ytext.toString())
  const textB = await b.evaluate(() => window.quire.ytext.toString())
  // What CodeMirror shows must be the Y.Text, on both pages.
  const shownA = await a.evaluate(() => window.quire.view.state.doc.toString())
  const shownB = await b.evaluate(() => window.quire.view.state.doc.toString())
  log({ step: 'typed', textA, textB, same: await same() })
  if (textA !== textB) fail(`pages differ:\nA: ${JSON.stringify(textA)}\nB: ${JSON.stringify(textB)}`)
  if (shownA !== textA || shownB !== textB) fail('an editor shows something else than its Y.Text')
  if (!textA.includes(TEXT_A) || !textA.includes(TEXT_B)) fail(`a typed run was torn apart: ${JSON.stringify(textA)}`)

  // Undo is per person: Alice's Mod-z takes back her own typing, never Bob's.
  await a.keyboard.press('Control+z')
  await b.waitForFunction((t) => !window.quire.ytext.toString().includes(t), TEXT_A, WAIT)
  const undone = await b.evaluate(() => window.quire.ytext.toString())
  log({ step: 'Alice undid', text: undone })
  if (!undone.includes(TEXT_B)) fail(`Alice's undo removed Bob's text: ${JSON.stringify(undone)}`)
  await a.keyboard.press('Control+Shift+Z')
  await b.waitForFunction((t) => window.quire.ytext.toString() === t, textA, WAIT)
  await a.waitForFunction((t) => window.quire.ytext.toString() === t, textA, WAIT)

  // Alice puts her cursor (a selection, even) in the middle line: Bob sees it with her name.
  await a.evaluate(() => {
    const { view, ytext } = window.quire
    const at = ytext.toString().indexOf('middle')
    view.dispatch({ selection: { anchor: at, head: at + 'middle'.length } })
    view.focus()
  })
  // Wait until Bob's page draws the caret where Alice put it (the awareness update is on its way).
  const caret = await b.waitForFunction((name) => {
    for (const info of document.querySelectorAll('.cm-ySelectionInfo')) {
      const caret = info.closest('.cm-ySelectionCaret')
      const lineEl = caret && caret.closest('.cm-line')
      // the line's text without the caret widgets drawn into it
      const copy = lineEl && lineEl.cloneNode(true)
      if (copy) copy.querySelectorAll('.cm-ySelectionCaret').forEach((w) => w.remove())
      const line = copy && copy.textContent.replace(/\u2060/g, '')
      const selected = [...document.querySelectorAll('.cm-ySelection')].map((e) => e.textContent).join('')
      if (info.textContent === name && line && line.includes('The middle line.') && selected === 'middle') {
        return { name: info.textContent, color: getComputedStyle(caret).backgroundColor, line, selected }
      }
    }
    return null
  }, ALICE.name, WAIT).then((h) => h.jsonValue())
  log({ step: 'cursor', ...caret })
  if (caret.color !== ALICE.rgb) fail(`Alice's caret on Bob's page has color ${caret.color}, want ${ALICE.rgb}`)

  // A hostile peer's "color" cannot restyle Alice's page (carets put it into a style attribute).
  const ctxM = await browser.newContext({ viewport })
  await preset(ctxM, 'Mallory')
  const m = await ctxM.newPage()
  await m.goto(url)
  await m.waitForSelector('#status[data-state=synced]', WAIT)
  await m.evaluate(() => {
    const { awareness, view } = window.quire
    const evil = 'red; position: fixed; inset: 0; z-index: 9999'
    awareness.setLocalStateField('user', { name: 'Mallory', color: evil, colorLight: evil })
    view.focus()
    view.dispatch({ selection: { anchor: 0, head: 3 } })
  })
  const mallory = await a.waitForFunction(() => {
    for (const info of document.querySelectorAll('.cm-ySelectionInfo')) {
      if (info.textContent === 'Mallory') return info.closest('.cm-ySelectionCaret').getAttribute('style')
    }
    return null
  }, null, WAIT).then((h) => h.jsonValue())
  log({ step: 'hostile color', style: mallory })
  if (/fixed|inset|z-index/.test(mallory)) fail(`a peer's color restyled the page: ${mallory}`)
  await ctxM.close()
  await a.waitForFunction(() => ![...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Mallory'), null, WAIT)

  // Bob's cursor, for the picture.
  await b.evaluate(() => window.quire.view.focus())
  await a.waitForSelector(`.cm-ySelectionInfo >> text=${BOB.name}`, WAIT)

  // The artifact: both editors side by side in one picture.
  mkdirSync(shots, { recursive: true })
  const [pa, pb] = await Promise.all([a.screenshot(), b.screenshot()])
  const sheet = await (await browser.newContext({ viewport: { width: viewport.width * 2 + 36, height: viewport.height + 64 } })).newPage()
  const img = (buf, who) => `<figure><figcaption>${who}</figcaption><img src="data:image/png;base64,${buf.toString('base64')}"></figure>`
  await sheet.setContent(`<style>body{margin:0;padding:8px;background:#d9dbe0;display:flex;gap:12px;font:13px system-ui,sans-serif}
figure{margin:0}figcaption{padding:2px 0 6px;color:#333}img{display:block;border:1px solid #999;box-shadow:0 2px 8px rgba(0,0,0,.15)}</style>
${img(pa, 'Alice’s browser')}${img(pb, 'Bob’s browser')}`)
  const file = join(shots, 'editor-side-by-side.png')
  await sheet.screenshot({ path: file })
  log({ done: true, text: textA, screenshot: file })
} finally {
  await browser.close()
}
