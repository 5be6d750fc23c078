// Shared helpers for the browser tests of the editor (e2e/editor_test.go drives these scripts).
import { chromium } from 'playwright-core'

/** Flags that keep Debian's chromium quiet and self-contained in a sandbox-less container. */
export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/**
 * launch starts headless chromium. Playwright gives every launch a fresh temporary user data dir,
 * and every browser.newContext() is an isolated profile (own IndexedDB, localStorage, and
 * online/offline emulation), which is what two people on two machines look like.
 */
export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: chromiumArgs
})

/** preset makes a context use this name and color without showing the name dialog. */
export const preset = async (context, name, color) => {
  await context.addInitScript(([n, c]) => {
    window.localStorage.setItem('quire.name', n)
    if (c) window.localStorage.setItem('quire.color', c)
  }, [name, color])
}

/** log prints one JSON line on stdout: the Go test reads these. */
export const log = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

/** fail reports an error and exits 1 with a message the Go test shows. */
export const fail = (msg) => {
  process.stderr.write(`FAIL: ${msg}\n`)
  process.exit(1)
}

/** parseArgs reads --key value pairs. */
export const parseArgs = (argv = process.argv.slice(2)) => {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const k = argv[i].slice(2)
      const v = argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[++i] : 'true'
      out[k] = v
    }
  }
  return out
}
