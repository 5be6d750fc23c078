// The documents page in real Chromium: it lists --doc with the people editing it now (two pages
// are opened on it), and its "New document" button creates a document and opens its editor.
// Prints JSON lines; the last is {"done":true,...}.
//
//   node e2e/js/editor_list.mjs --base http://127.0.0.1:PORT --doc ID [--name NAME] [--shots DIR]
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { launch, preset, log, fail, parseArgs } from './editor_lib.mjs'

const { base, doc, name, shots } = parseArgs()
if (!base || !doc) fail('usage: --base URL --doc ID [--name NAME] [--shots DIR]')
const WAIT = { timeout: 30000 }

const browser = await launch()
try {
  const editors = []
  for (const [who, color] of [['Alice', '#d1495b'], ['Bob', '#3a7bd5']]) {
    const ctx = await browser.newContext()
    await preset(ctx, who, color)
    const p = await ctx.newPage()
    await p.goto(`${base}/d/${encodeURIComponent(doc)}`)
    await p.waitForSelector('#status[data-state=synced]', WAIT)
    editors.push(p)
  }
  await editors[0].click('.cm-content')
  await editors[0].keyboard.type('listed')
  await editors[1].waitForFunction(() => window.quire.ytext.toString() === 'listed', null, WAIT)

  const ctx = await browser.newContext({ viewport: { width: 800, height: 480 } })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => log({ pageerror: e.message }))
  await page.goto(`${base}/`)
  await page.waitForSelector('body[data-loaded=yes]', WAIT)
  const row = `#docs li[data-id="${doc}"]`
  await page.waitForSelector(row, WAIT)
  // The page refreshes itself; wait until it shows both editors (by name, or at least a count).
  const seen = await page.waitForFunction((sel) => {
    const li = document.querySelector(sel)
    const who = li && li.querySelector('.who')
    if (!who || who.dataset.count !== '2') return null
    return {
      name: li.querySelector('.doc-name').textContent,
      count: Number(who.dataset.count),
      people: [...who.querySelectorAll('.pname')].map((e) => e.textContent).sort(),
      when: li.querySelector('time') ? li.querySelector('time').textContent : null,
      href: li.querySelector('a').getAttribute('href')
    }
  }, row, WAIT).then((h) => h.jsonValue())
  log({ step: 'listed', ...seen })
  if (name && seen.name !== name) fail(`the list shows the name ${JSON.stringify(seen.name)}, want ${JSON.stringify(name)}`)
  if (seen.href !== `/d/${encodeURIComponent(doc)}`) fail(`the row links to ${seen.href}`)
  if (shots) {
    mkdirSync(shots, { recursive: true })
    await page.screenshot({ path: join(shots, 'editor-list.png') })
  }

  // New document: the button creates one and opens its editor, which connects.
  await Promise.all([page.waitForURL(/\/d\/[A-Za-z0-9._-]+$/, WAIT), page.click('#new-doc')])
  const created = decodeURIComponent(new URL(page.url()).pathname.slice(3))
  await page.waitForSelector('#status[data-state=synced]', WAIT)
  log({ done: true, listed: seen, created })
} finally {
  await browser.close()
}
