// A real Yjs client driven by the Go e2e tests: a stock y-websocket
// WebsocketProvider (over the `ws` package) on one document, whose root
// Y.Text `content` it edits on command. It also carries an access token and
// an Origin for the access-control tests, and reports what the server tells
// it: auth messages (permission denied), what the stock provider makes of
// them (its console.warn), close events and the terminal `closed` event of a
// provider that stopped reconnecting.
//
// Usage: node e2e/js/client.mjs --url ws://HOST:PORT/ws --doc ID
//          [--seed N] [--name NAME] [--watch] [--awareness] [--offline]
//          [--token JWT] [--origin ORIGIN] [--profile P] [--root NAME]
//   --token   passed as the provider's params {token}, i.e. ?token=JWT
//   --origin  an Origin header on the handshake, as a browser page would send
//   --root    the root Y.Text the client edits and reports (default content)
//   --profile an edit profile of crdt/oracle/gen.mjs (mixed, xml, map, ...):
//             "edit" then makes 1-3 of its edits per transaction across the
//             roots content (Y.Text), meta (Y.Map), list (Y.Array) and the
//             XmlFragment prosemirror (as y-prosemirror/Tiptap do), with BMP
//             text only; reports carry the other roots as canonical JSON
//
// Output: one JSON object per line, {"ev": ...}:
//   ready {clientID}            at start
//   status {status}             provider status (connecting/connected/disconnected)
//   synced                      each time the provider reports synced
//   close {code, reason}        the server closed the connection
//   closed {code, reason}       the provider gave up (a 44xx close: no reconnect)
//   auth {bytes, sub, reason}   an auth message from the server: its raw bytes,
//                               its sub-type (0: permission denied) and reason
//   warn {msg}                  what the stock provider logged with console.warn
//   change {sv, len}            (--watch) every update this client received
//   awareness {states}          (--awareness) every awareness change: clientID -> state
//   done {id, cmd, ...}         a command finished
//   report {clientID, sv, len, hash, text?, json?, state?}   answer to "report" (state: base64 v1
//                               update; json: with --profile, the other roots; hash then covers it too)
//   error {msg}                 anything unexpected; the Go side fails the test
// Input: one JSON command per line, run one after the other:
//   {"cmd":"waitSynced"}                       until provider.synced
//   {"cmd":"edit","n":100,"delay":2}           n seeded random edits, one transaction each
//   {"cmd":"type","delay":3}                   start typing until "stop" (runs in the background)
//   {"cmd":"stop"}                             stop typing; done carries the edit count
//   {"cmd":"insert","pos":0,"text":"x"}        one insert (pos -1: at the end)
//   {"cmd":"waitContains","text":"..."}        until the text contains
//   {"cmd":"flood","n":2000}                   n one-character inserts in one synchronous
//                                              loop: n update messages at once
//   {"cmd":"waitClosed"}                       until the provider emitted `closed`
//   {"cmd":"state"}                            done carries shouldConnect, wsconnected, synced
//   {"cmd":"waitSV","sv":{"123":4}}            until the local state vector covers sv
//   {"cmd":"waitText","text":"..."}            until the text equals
//   {"cmd":"report","text":true,"state":false} state vector, text length and
//                                              sha256, the text, the full state
//   {"cmd":"bulk","n":10,"size":1000}          n appends of size characters
//   {"cmd":"disconnect"} / {"cmd":"connect"}   provider.disconnect()/connect()
//   {"cmd":"setUser","name":"x"}               awareness.setLocalStateField('user', {name})
//   {"cmd":"destroy"}                          provider.destroy(): leave the document
//   {"cmd":"exit"}                             process.exit(0)
import * as Y from 'yjs'
import { WebsocketProvider, messageAuth } from 'y-websocket'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'
import readline from 'node:readline'
import { createHash } from 'node:crypto'
import { parseArgs, emit, fail, svToJSON, svCovers, mulberry32, randomEdit, sleep } from './lib.mjs'
import { PROFILES, editOnce, docJSON } from '../../crdt/oracle/gen.mjs'
import { Rng } from '../../crdt/oracle/lib.mjs'

const args = parseArgs(process.argv.slice(2), {
  url: '', doc: '', seed: '1', name: '', watch: false, awareness: false, offline: false, token: '', origin: '', profile: '', root: 'content'
})
if (!args.url || !args.doc) fail('--url and --doc are required')
if (args.profile && !PROFILES.includes(args.profile)) fail(`unknown --profile ${args.profile}; one of ${PROFILES.join(' ')}`)

// The stock provider lets one choose the WebSocket class; a subclass is the
// only way to add a header (Origin) to its handshake without changing it.
class OriginWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, args.origin ? { headers: { Origin: args.origin } } : {})
  }
}

// What the stock provider does with a permission-denied message is log it
// with console.warn; record that, so the test sees what a user of the
// stock client would see.
const warn = console.warn
console.warn = (...a) => {
  emit({ ev: 'warn', msg: a.map(String).join(' ') })
  warn(...a)
}

const ydoc = new Y.Doc()
const ytext = ydoc.getText(args.root)
const rand = mulberry32(Number(args.seed))
// The rich edits: gen.mjs's editors with a seeded generator of their own.
const XML_ROOT = 'prosemirror'
const rich = args.profile ? { rnd: new Rng(Number(args.seed)), sim: { seed: Number(args.seed), xmlRoot: XML_ROOT, bmpOnly: true } } : null
if (rich) { ydoc.getMap('meta'); ydoc.getArray('list'); ydoc.getXmlFragment(XML_ROOT) }
const editOne = () => {
  if (!rich) return randomEdit(ydoc, ytext, rand)
  const n = rich.rnd.weighted([[70, 1], [20, 2], [10, 3]])
  ydoc.transact(() => { for (let i = 0; i < n; i++) editOnce(rich.rnd, ydoc, args.profile, rich.sim) })
}
// disableBc: several clients of one document may run in one test, and they
// must talk through the server only.
const provider = new WebsocketProvider(args.url, args.doc, ydoc, {
  WebSocketPolyfill: OriginWebSocket,
  disableBc: true,
  connect: !args.offline,
  params: args.token ? { token: args.token } : {}
})
emit({ ev: 'ready', clientID: ydoc.clientID })

// Report every auth message with its raw bytes before the stock handler
// (which logs it) runs.
const stockAuth = provider.messageHandlers[messageAuth]
provider.messageHandlers[messageAuth] = (encoder, decoder, prov, emitSynced, type) => {
  const bytes = Array.from(decoder.arr)
  let sub = null
  let reason = null
  try {
    const d = decoding.createDecoder(decoder.arr)
    decoding.readVarUint(d) // message type 2
    sub = decoding.readVarUint(d)
    reason = decoding.readVarString(d)
  } catch (e) {
    reason = `undecodable: ${e}`
  }
  emit({ ev: 'auth', bytes, sub, reason })
  stockAuth(encoder, decoder, prov, emitSynced, type)
}

let closedEvent = null
provider.on('status', ({ status }) => emit({ ev: 'status', status }))
provider.on('sync', (synced) => { if (synced) emit({ ev: 'synced' }) })
provider.on('connection-close', (event) => {
  if (event) emit({ ev: 'close', code: event.code, reason: String(event.reason ?? '') })
})
provider.on('closed', (event) => {
  closedEvent = event
  emit({ ev: 'closed', code: event.code, reason: String(event.reason ?? '') })
})
if (args.watch) {
  ydoc.on('update', (_update, origin) => {
    if (origin === provider) emit({ ev: 'change', sv: svToJSON(Y.decodeStateVector(Y.encodeStateVector(ydoc))), len: ytext.length })
  })
}
if (args.awareness) {
  provider.awareness.on('change', () => {
    const states = {}
    for (const [id, state] of provider.awareness.getStates()) states[id] = state
    emit({ ev: 'awareness', states })
  })
}
if (args.name) provider.awareness.setLocalStateField('user', { name: args.name })

const localSV = () => Y.decodeStateVector(Y.encodeStateVector(ydoc))

/** Resolves once pred() holds, re-checking on every document or provider event. */
const until = (pred) => new Promise((resolve) => {
  if (pred()) return resolve()
  const check = () => {
    if (pred()) {
      ydoc.off('update', check)
      provider.off('sync', check)
      provider.off('closed', check)
      resolve()
    }
  }
  ydoc.on('update', check)
  provider.on('sync', check)
  provider.on('closed', check)
})

let typing = null // {stop: boolean, count: number, finished: Promise}

const commands = {
  async waitSynced () { await until(() => provider.synced); return {} },
  async edit ({ n = 1, delay = 0 }) {
    for (let i = 0; i < n; i++) {
      editOne()
      if (delay > 0) await sleep(delay)
      else if (i % 20 === 19) await sleep(0) // let the socket breathe
    }
    return { len: ytext.length }
  },
  async type ({ delay = 3 }) {
    if (typing) throw new Error('already typing')
    const t = { stop: false, count: 0 }
    t.finished = (async () => {
      while (!t.stop) {
        editOne()
        t.count++
        await sleep(delay)
      }
    })()
    typing = t
    return {}
  },
  async stop () {
    if (!typing) throw new Error('not typing')
    typing.stop = true
    await typing.finished
    const count = typing.count
    typing = null
    return { count }
  },
  async insert ({ pos = 0, text = '' }) {
    ytext.insert(pos < 0 ? ytext.length : pos, text)
    return { len: ytext.length }
  },
  async waitContains ({ text }) { await until(() => ytext.toString().includes(text)); return { text: ytext.toString() } },
  async flood ({ n = 1000 }) {
    // Every transaction is one update message: n messages leave at once.
    for (let i = 0; i < n; i++) ytext.insert(ytext.length, 'f')
    return { n }
  },
  async waitClosed () { await until(() => closedEvent !== null); return { ...closedEvent } },
  async state () {
    return { shouldConnect: provider.shouldConnect, wsconnected: provider.wsconnected, synced: provider.synced }
  },
  async waitSV ({ sv }) {
    const want = new Map(Object.entries(sv).map(([k, v]) => [Number(k), v]))
    await until(() => svCovers(localSV(), want))
    return {}
  },
  async waitText ({ text }) { await until(() => ytext.toString() === text); return {} },
  async report ({ text = true, state = false }) {
    const s = ytext.toString()
    const hash = createHash('sha256').update(s)
    const json = rich ? docJSON(ydoc, XML_ROOT) : null
    if (json !== null) hash.update('\0').update(json)
    emit({
      ev: 'report',
      clientID: ydoc.clientID,
      sv: svToJSON(localSV()),
      len: s.length,
      hash: hash.digest('hex'),
      ...(text ? { text: s } : {}),
      ...(text && json !== null ? { json } : {}),
      ...(state ? { state: Buffer.from(Y.encodeStateAsUpdate(ydoc)).toString('base64') } : {})
    })
    return {}
  },
  async bulk ({ n = 1, size = 1000 }) {
    for (let i = 0; i < n; i++) {
      ytext.insert(ytext.length, `[chunk ${i}]`.padEnd(size, '.'))
      await sleep(0)
    }
    return { len: ytext.length }
  },
  async disconnect () { provider.disconnect(); return {} },
  async connect () { provider.connect(); return {} },
  async setUser ({ name }) { provider.awareness.setLocalStateField('user', { name }); return {} },
  async destroy () { provider.destroy(); return {} },
  async exit () { process.exit(0) }
}

// Commands run one after the other; "type" returns at once and keeps typing
// in the background, so a later "stop" is not stuck behind it.
let queue = Promise.resolve()
const run = async (msg) => {
  const fn = commands[msg.cmd]
  if (!fn) throw new Error(`unknown command ${msg.cmd}`)
  const res = await fn(msg)
  emit({ ev: 'done', id: msg.id ?? null, cmd: msg.cmd, ...res })
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return
  let msg
  try { msg = JSON.parse(line) } catch (e) { fail(`bad command line ${line}: ${e}`) }
  queue = queue.then(() => run(msg)).catch((e) => fail(`${msg.cmd}: ${e?.stack ?? e}`))
}).on('close', () => {
  // stdin closed: the Go side is done with us.
  queue.then(() => { provider.destroy(); process.exit(0) })
})
