// A flooding peer for the limits e2e tests: a raw `ws` client (no provider)
// that joins a document and then sends genuine Yjs updates (one inserted
// character each, as a sync update message) as fast as the socket takes them,
// until the server closes it. With --attempts N it comes back after every cut
// or refusal, like a script that reconnects on any close, and reports how
// each attempt ended.
//
// Usage: node e2e/js/auth-raw.mjs --url ws://HOST:PORT/ws --doc ID
//          [--token JWT] [--attempts 1] [--pause 100] [--max 20000] [--timeout 15000]
//   --pause    milliseconds between the end of one attempt and the next
//   --max      updates one attempt sends at most
//   --timeout  milliseconds one attempt waits for the server to close it
// Output, one JSON line per attempt:
//   {"ev":"attempt","i":N,"refused":true,"status":S,"retryAfter":"H","body":B}
//       the upgrade was refused with HTTP status S (Retry-After header H)
//   {"ev":"attempt","i":N,"refused":false,"joined":bool,"code":C,"reason":R,"sent":K}
//       upgraded, sent K updates, then closed by the server with C and R
//   {"ev":"attempt","i":N,"refused":false,"timeout":true,"sent":K}
//       the server left the flooder connected
// and finally {"ev":"end"}.
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import { parseArgs, emit, fail, sleep } from './lib.mjs'

const args = parseArgs(process.argv.slice(2), {
  url: '', doc: '', token: '', attempts: '1', pause: '100', max: '20000', timeout: '15000'
})
if (!args.url || !args.doc) fail('--url and --doc are required')
const max = Number(args.max)

const syncMessage = (write) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  write(e)
  return encoding.toUint8Array(e)
}

const attempt = (i) => new Promise((resolve) => {
  // A fresh document per attempt: its updates are valid and complete on
  // their own (none depends on one the server never got), so the server
  // integrates each until it cuts the flooder off.
  const ydoc = new Y.Doc()
  const ytext = ydoc.getText('content')
  const target = `${args.url}/${encodeURIComponent(args.doc)}` + (args.token ? `?token=${encodeURIComponent(args.token)}` : '')
  const ws = new WebSocket(target)
  ws.binaryType = 'arraybuffer'
  let joined = false
  let sent = 0
  let open = false
  let settled = false
  const finish = (res) => {
    if (settled) return
    settled = true
    open = false
    clearTimeout(timer)
    ydoc.off('update', onUpdate)
    resolve({ ev: 'attempt', i, ...res })
  }
  const timer = setTimeout(() => {
    finish({ refused: false, timeout: true, joined, sent })
    ws.terminate()
  }, Number(args.timeout))

  const onUpdate = (update) => {
    if (open) {
      ws.send(syncMessage((e) => syncProtocol.writeUpdate(e, update)))
      sent++
    }
  }
  ydoc.on('update', onUpdate)
  // Send in slices of 100 while the socket takes it, yielding between them
  // so that the server's close frame is read as soon as it arrives.
  const blast = () => {
    for (let k = 0; k < 100 && open && ws.readyState === WebSocket.OPEN && sent < max && ws.bufferedAmount < (1 << 20); k++) {
      ytext.insert(ytext.length, 'x')
    }
    if (open && sent < max) setImmediate(blast)
  }

  ws.on('unexpected-response', (req, res) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk) => { body += chunk })
    res.on('end', () => {
      finish({ refused: true, status: res.statusCode, retryAfter: res.headers['retry-after'] ?? '', body: body.trim() })
      req.destroy()
    })
  })
  ws.on('error', () => {}) // the outcome is reported by unexpected-response or close
  ws.on('open', () => {
    open = true
    ws.send(syncMessage((e) => syncProtocol.writeSyncStep1(e, ydoc)))
  })
  ws.on('message', (buf) => {
    if (joined) return
    const d = decoding.createDecoder(new Uint8Array(buf))
    if (decoding.readVarUint(d) === 0 && decoding.readVarUint(d) === 1) { // the server's step 2: in the room
      joined = true
      blast()
    }
  })
  ws.on('close', (code, reason) => {
    finish({ refused: false, joined, code, reason: reason.toString(), sent })
  })
})

for (let i = 1; i <= Number(args.attempts); i++) {
  emit(await attempt(i))
  if (i < Number(args.attempts)) await sleep(Number(args.pause))
}
emit({ ev: 'end' })
process.exit(0)
