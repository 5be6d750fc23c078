// A hostile peer: a raw `ws` client (no provider) that sends one malformed
// message and reports how the server closed the connection.
//
// Usage: node e2e/js/hostile.mjs --url ws://HOST:PORT/ws --doc ID --mode MODE
//          [--join] [--seed N] [--timeout MS]
//   --join     first behave: send sync step 1 and wait for the server's step 2,
//              so the offence happens inside the room.
//   --timeout  give up waiting for the close after MS milliseconds (15000)
// Modes (each payload is checked to be one that Yjs itself rejects):
//   random           random bytes
//   truncated        a real sync update message cut in the middle
//   truncated-sv     a sync step 1 whose state vector is cut short
//   huge-length      a sync update whose length prefix claims 2^40 bytes
//   bogus-update     valid framing, an update Yjs cannot decode
//   bogus-step2      the same garbage as a sync step 2
//   bogus-awareness  an awareness message whose update is garbage
//   unknown-type     message type 7
//   unknown-sync     sync message with sub-type 9
//   big-frame        one 20 MB binary frame (a sync update of garbage)
//   text-frame       a text frame
//   stall            (with --join) send nothing more and stop reading: the
//                    socket is paused until a line "resume" arrives on stdin
// Output: {"ev":"sent","bytes":N} (or {"ev":"paused"}) then
// {"ev":"closed","code":C,"reason":R,"sent":bool,"received":bytes}, or
// {"ev":"timeout"} if the server left the connection open.
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import readline from 'node:readline'
import { parseArgs, emit, fail, mulberry32 } from './lib.mjs'

const args = parseArgs(process.argv.slice(2), { url: '', doc: '', mode: '', join: false, seed: '7', timeout: '15000' })
if (!args.url || !args.doc || !args.mode) fail('--url, --doc and --mode are required')

/** rejectedByYjs reports whether a y-websocket peer would fail on buf: it throws, or the type is unknown. */
const rejectedByYjs = (buf) => {
  const log = console.error
  console.error = () => {} // y-protocols logs what it catches; that is expected here
  try {
    const decoder = decoding.createDecoder(buf)
    const type = decoding.readVarUint(decoder)
    const doc = new Y.Doc()
    switch (type) {
      case 0: {
        let failed = false
        syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), doc, null, () => { failed = true })
        return failed
      }
      case 1:
        awarenessProtocol.applyAwarenessUpdate(new awarenessProtocol.Awareness(doc), decoding.readVarUint8Array(decoder), null)
        return false
      case 2: case 3:
        return false
      default:
        return true
    }
  } catch {
    return true
  } finally {
    console.error = log
  }
}

const message = (fn) => {
  const e = encoding.createEncoder()
  fn(e)
  return encoding.toUint8Array(e)
}

/** realUpdate is a genuine Yjs update inserting some text. */
const realUpdate = () => {
  const doc = new Y.Doc()
  doc.getText('content').insert(0, 'hostile text that must never be stored '.repeat(4))
  return Y.encodeStateAsUpdate(doc)
}

/** garbageUpdate is an update whose one struct has content ref 31, which no decoder knows. */
const garbageUpdate = () => message((e) => {
  encoding.writeVarUint(e, 1) // one client
  encoding.writeVarUint(e, 1) // one struct
  encoding.writeVarUint(e, 4242) // client
  encoding.writeVarUint(e, 0) // clock
  encoding.writeUint8(e, 31) // info: no origins, content ref 31
  encoding.writeVarUint(e, 1) // parent is a root type named...
  encoding.writeVarString(e, 'content')
  encoding.writeVarUint(e, 5)
  encoding.writeUint8Array(e, new Uint8Array([1, 2, 3, 4, 5]))
})

const payload = () => {
  switch (args.mode) {
    case 'random': {
      for (let seed = Number(args.seed); ; seed++) {
        const rand = mulberry32(seed)
        const buf = new Uint8Array(1024)
        for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256)
        if (rejectedByYjs(buf)) return buf
      }
    }
    case 'truncated': {
      const full = message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, realUpdate()) })
      return full.slice(0, Math.floor(full.length / 2))
    }
    case 'truncated-sv':
      return message((e) => {
        encoding.writeVarUint(e, 0)
        encoding.writeVarUint(e, 0) // step 1
        encoding.writeVarUint(e, 10) // 10 bytes of state vector follow...
        encoding.writeVarUint(e, 3) // ...but only these: 3 entries announced
        encoding.writeVarUint(e, 1234)
      })
    case 'huge-length':
      return message((e) => {
        encoding.writeVarUint(e, 0)
        encoding.writeVarUint(e, 2)
        encoding.writeVarUint(e, 2 ** 40)
        encoding.writeUint8Array(e, new Uint8Array(16))
      })
    case 'bogus-update':
      return message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, garbageUpdate()) })
    case 'bogus-step2':
      return message((e) => {
        encoding.writeVarUint(e, 0)
        encoding.writeVarUint(e, 1)
        encoding.writeVarUint8Array(e, garbageUpdate())
      })
    case 'bogus-awareness':
      return message((e) => {
        encoding.writeVarUint(e, 1)
        encoding.writeVarUint8Array(e, message((a) => {
          encoding.writeVarUint(a, 1) // one entry
          encoding.writeVarUint(a, 99) // client
          encoding.writeVarUint(a, 1) // clock
          encoding.writeVarString(a, '{"user": not json')
        }))
      })
    case 'unknown-type':
      return new Uint8Array([7, 1, 2, 3])
    case 'unknown-sync':
      return new Uint8Array([0, 9, 1, 0])
    case 'big-frame': {
      const n = 20 << 20
      // Past the header, 0xff bytes: an update whose first varint never
      // ends, so the frame is invalid even for a server whose read limit
      // were above 20 MB.
      const buf = new Uint8Array(n).fill(0xff)
      const head = message((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 2); encoding.writeVarUint(e, n - 8) })
      buf.set(head)
      return buf
    }
    case 'text-frame':
      return 'a text frame is not a y-protocols message'
    case 'stall':
      return null
    default:
      fail(`unknown mode ${args.mode}`)
  }
}

const data = payload()
if (data instanceof Uint8Array && !rejectedByYjs(data)) {
  fail(`mode ${args.mode}: Yjs accepts this payload, it proves nothing`)
}

const ws = new WebSocket(`${args.url}/${args.doc}`)
ws.binaryType = 'arraybuffer'
let sent = false
const send = () => {
  if (sent) return
  sent = true
  if (data === null) {
    // Stall: stop reading. What the server sends piles up in the socket
    // buffers, then in the server.
    ws._socket.pause()
    emit({ ev: 'paused' })
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
      if (line.trim() === 'resume') {
        ws._socket.resume()
        emit({ ev: 'resumed' })
      }
    })
    return
  }
  ws.send(data, { binary: typeof data !== 'string' }, (err) => {
    // The server may close while a big frame is still being written.
    if (err) emit({ ev: 'send-error', msg: String(err.message ?? err) })
  })
  emit({ ev: 'sent', bytes: data.length })
}
ws.on('open', () => {
  if (!args.join) return send()
  ws.send(message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, new Y.Doc()) }))
})
ws.on('message', (buf) => {
  if (!args.join || sent) return
  const d = decoding.createDecoder(new Uint8Array(buf))
  if (decoding.readVarUint(d) === 0 && decoding.readVarUint(d) === 1) send() // got step 2: joined
})
ws.on('error', (err) => emit({ ev: 'ws-error', msg: String(err.message ?? err) }))
ws.on('unexpected-response', (_req, res) => {
  emit({ ev: 'refused', status: res.statusCode })
  process.exit(0)
})
let received = 0
ws.on('message', (buf) => { received += buf.byteLength })
ws.on('close', (code, reason) => {
  emit({ ev: 'closed', code, reason: reason.toString(), sent, received })
  process.exit(0)
})
setTimeout(() => { emit({ ev: 'timeout', sent }); process.exit(0) }, Number(args.timeout))
