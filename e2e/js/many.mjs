// Many documents at once from one process: one stock WebsocketProvider per
// document, for the scale test.
//
// Usage: node e2e/js/many.mjs --url ws://HOST:PORT/ws --count N
// Input (JSON lines):
//   {"cmd":"open","prefix":P,"round":R}
//                             open documents P-0 ... P-(N-1) at once, wait
//                             until all are synced, check each text is
//                             lines(R-1), then append the line of round R
//   {"cmd":"close"}           destroy every provider (leave every document)
// where lines(R) of document i is "r1 doc i\n" ... "rR doc i\n".
// Output: {"ev":"done","cmd":...} or {"ev":"error","msg":...}.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'
import { parseArgs, emit, fail } from './lib.mjs'

const args = parseArgs(process.argv.slice(2), { url: '', count: '200' })
if (!args.url) fail('--url is required')
const count = Number(args.count)

const lines = (i, rounds) => {
  let s = ''
  for (let r = 1; r <= rounds; r++) s += `r${r} doc ${i}\n`
  return s
}

let open = []

const commands = {
  async open ({ prefix, round }) {
    open = []
    for (let i = 0; i < count; i++) {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(args.url, `${prefix}-${i}`, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
      open.push({ doc, provider })
    }
    await Promise.all(open.map(({ provider }) => new Promise((resolve) => {
      if (provider.synced) return resolve()
      provider.once('sync', resolve)
    })))
    open.forEach(({ doc }, i) => {
      const text = doc.getText('content')
      const want = lines(i, round - 1)
      if (text.toString() !== want) throw new Error(`doc ${i}: text ${JSON.stringify(text.toString())}, want ${JSON.stringify(want)}`)
      text.insert(text.length, `r${round} doc ${i}\n`)
    })
    return { opened: open.length }
  },
  async close () {
    for (const { provider, doc } of open) {
      provider.destroy()
      doc.destroy()
    }
    open = []
    return {}
  }
}

let queue = Promise.resolve()
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return
  const msg = JSON.parse(line)
  queue = queue.then(async () => {
    const fn = commands[msg.cmd] ?? fail(`unknown command ${msg.cmd}`)
    emit({ ev: 'done', cmd: msg.cmd, ...(await fn(msg)) })
  }).catch((e) => fail(`${msg.cmd}: ${e?.stack ?? e}`))
}).on('close', () => queue.then(() => process.exit(0)))
