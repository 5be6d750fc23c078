// Generates the golden fixtures of crdt/testdata from real lib0 and Yjs
// (the versions in the repo-root node_modules). Run from the module root:
//
//   node crdt/testdata/gen/gen.mjs
//
// It writes crdt/testdata/lib0.json (lib0 encodings),
// crdt/testdata/yjs.json (Yjs scenarios: updates a doc emits, states after
// applying updates in a given order, local text edits and their updates) and
// crdt/testdata/replays.json (the digest of the state Yjs reaches replaying
// each ../shared/traces/sequential trace as local edits).
// Deterministic: fixed client ids, no randomness.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { createHash } from 'node:crypto'

const hex = u => u === null ? null : Buffer.from(u).toString('hex')
const enc = f => { const e = encoding.createEncoder(); f(e); return hex(encoding.toUint8Array(e)) }
const fromHex = h => new Uint8Array(Buffer.from(h, 'hex'))

// ---- lib0 -----------------------------------------------------------------
const lib0 = { varUint: [], varInt: [], varString: [], any: [], anyNormalize: [], json: [] }
for (const v of [0, 1, 127, 128, 255, 300, 16383, 16384, 2 ** 21, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
  lib0.varUint.push({ value: String(v), hex: enc(e => encoding.writeVarUint(e, v)) })
}
for (const v of [0, -0, 1, -1, 63, -63, 64, -64, 65, 8191, 8192, -8192, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 53 - 1, -(2 ** 53 - 1)]) {
  lib0.varInt.push({ value: Object.is(v, -0) ? '-0' : String(v), hex: enc(e => encoding.writeVarInt(e, v)) })
}
for (const v of ['', 'a', 'héllo wörld', '😀', 'ab😀cd\u{10FFFF}', '\u0000\u001f"\\', 'x'.repeat(200), 'é'.repeat(300)]) {
  lib0.varString.push({ value: v, hex: enc(e => encoding.writeVarString(e, v)) })
}
const anyValues = {
  undefined: undefined,
  null: null,
  true: true,
  false: false,
  zero: 0,
  negZero: -0,
  int: 42,
  negInt: -1000,
  int31: 2 ** 31 - 1,
  int31neg: -(2 ** 31 - 1),
  int32: 2 ** 31,
  float32: 0.5,
  float32big: 2 ** 40,
  float64: 1.1,
  maxSafe: 2 ** 53 - 1,
  nan: NaN,
  inf: Infinity,
  negInf: -Infinity,
  bigint: 2n ** 63n - 1n,
  bigintNeg: -5n,
  string: 'hé😀',
  emptyString: '',
  array: [1, 'two', [3, null], { four: 4 }],
  object: { b: 1, a: 2, 10: 'ten', 2: 'two', nested: { x: [true, false] } },
  bytes: new Uint8Array([0, 1, 2, 255]),
  emptyObject: {},
  emptyArray: []
}
for (const [name, v] of Object.entries(anyValues)) {
  lib0.any.push({ name, hex: enc(e => encoding.writeAny(e, v)) })
}
// Encodings lib0 reads but would write differently: what Yjs re-encodes.
const anyInputs = {
  float64Int: enc(e => { encoding.writeUint8(e, 123); encoding.writeFloat64(e, 3) }),
  float32Int: enc(e => { encoding.writeUint8(e, 124); encoding.writeFloat32(e, -7) }),
  float64Float32: enc(e => { encoding.writeUint8(e, 123); encoding.writeFloat64(e, 0.25) }),
  varIntBig: enc(e => { encoding.writeUint8(e, 125); encoding.writeVarInt(e, 2 ** 40) }),
  varIntBigOdd: enc(e => { encoding.writeUint8(e, 125); encoding.writeVarInt(e, 2 ** 40 + 1) }),
  objectKeyOrder: enc(e => {
    encoding.writeUint8(e, 118); encoding.writeVarUint(e, 5)
    for (const [k, v] of [['z', 1], ['5', 2], ['a', 3], ['1', 4], ['z', 5]]) { encoding.writeVarString(e, k); encoding.writeAny(e, v) }
  }),
  objectProto: enc(e => {
    encoding.writeUint8(e, 118); encoding.writeVarUint(e, 2)
    encoding.writeVarString(e, '__proto__'); encoding.writeAny(e, { evil: 1 })
    encoding.writeVarString(e, 'ok'); encoding.writeAny(e, 1)
  })
}
for (const [name, h] of Object.entries(anyInputs)) {
  const v = decoding.readAny(decoding.createDecoder(fromHex(h)))
  lib0.anyNormalize.push({ name, in: h, out: enc(e => encoding.writeAny(e, v)) })
}
for (const s of ['{"b":1,"a":[1,2.50,-0,1e21,1e-7,123456789012345680000]}', ' { "2" : "x" , "1":"y","k":null } ', '"\\ud83d\\ude00 \\ud800 \\u00e9 \\n\\t\\u001f"', '[true,false,null,{"__proto__":1}]', '{"a":1,"a":2}', '1.0E+2', '-0.000001', '0.0000001', '"\\/"']) {
  lib0.json.push({ in: s, out: JSON.stringify(JSON.parse(s)) })
}
writeFileSync('crdt/testdata/lib0.json', JSON.stringify(lib0, null, 1) + '\n')

// ---- Yjs ------------------------------------------------------------------
const newDoc = (client, gc = true) => { const d = new Y.Doc({ gc }); d.clientID = client; return d }
// capture records the updates of a doc's own transactions (not those it
// emits for updates it receives, which are applied with origin 'remote').
const capture = doc => { const out = []; doc.on('update', (u, origin) => { if (origin !== 'remote') out.push(u) }); return out }
const sync = (doc, u) => Y.applyUpdate(doc, u, 'remote')

// A remote scenario: updates applied in the given order to a fresh doc; what
// the doc emits and holds after each.
const remote = (name, updates, order, { gc = true, diffSVs = [] } = {}) => {
  const doc = newDoc(999, gc)
  const steps = []
  let emitted = []
  doc.on('update', u => { emitted.push(u) })
  for (const i of order) {
    emitted = []
    Y.applyUpdate(doc, updates[i])
    steps.push({
      apply: i,
      // A formatting cleanup makes Yjs emit a second update; crdt returns
      // both as one, as Y.mergeUpdates merges them.
      emitted: emitted.length === 0 ? null : hex(emitted.length === 1 ? emitted[0] : Y.mergeUpdates(emitted)),
      emissions: emitted.length,
      state: hex(Y.encodeStateAsUpdate(doc)),
      sv: hex(Y.encodeStateVector(doc)),
      pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null
    })
  }
  // Render the text only now, so the root was a plain type while updates
  // arrived (Quire, like a server, does no formatting cleanup).
  const text = doc.getText('text').toString()
  const diffs = diffSVs.map(sv => ({ sv: hex(sv), update: hex(Y.encodeStateAsUpdate(doc, sv)) }))
  return { name, gc, updates: updates.map(hex), steps, text, diffs }
}

const scenarios = { remote: [], local: [] }

// Content of every kind in one document.
{
  const a = newDoc(1)
  const ups = capture(a)
  const text = a.getText('text')
  text.insert(0, 'hello 😀 world')
  text.format(0, 5, { bold: true })
  text.insertEmbed(6, { image: 'x.png' })
  text.format(2, 1, { link: { href: 'https://example.com', n: 1.5 } })
  const map = a.getMap('map')
  a.transact(() => {
    map.set('num', 42)
    map.set('float', 1.25)
    map.set('neg0', -0)
    map.set('big', 2n ** 60n)
    map.set('nan', NaN)
    map.set('str', 'sträng')
    map.set('obj', { z: 1, a: [1, 2, { b: null }], 3: 'three' })
    map.set('bytes', new Uint8Array([1, 2, 3]))
    map.set('undef', undefined)
    map.set('bool', false)
  })
  const arr = new Y.Array()
  map.set('arr', arr)
  arr.push([1, 'two', { three: 3 }])
  const nestedText = new Y.Text('nested')
  arr.push([nestedText])
  const sub = new Y.Doc({ guid: 'sub-guid', autoLoad: true, meta: { m: 1 } })
  map.set('subdoc', sub)
  const sub2 = new Y.Doc({ guid: 'sub2', gc: false })
  arr.push([sub2])
  const frag = a.getXmlFragment('xml')
  const p = new Y.XmlElement('paragraph')
  p.setAttribute('level', '2')
  const t = new Y.XmlText()
  frag.insert(0, [p, new Y.XmlHook('hook-name')])
  p.insert(0, [t])
  t.insert(0, 'bold', { bold: true })
  t.insert(4, ' plain')
  map.set('num', 43) // overwrite: the old value is deleted
  scenarios.remote.push(remote('all-contents', ups, ups.map((_, i) => i)))
  scenarios.remote.push(remote('all-contents-reversed', ups, ups.map((_, i) => ups.length - 1 - i), { diffSVs: [new Uint8Array([0])] }))
  const whole = Y.encodeStateAsUpdate(a)
  scenarios.remote.push(remote('all-contents-whole', [whole], [0]))
}

// A surrogate pair split by a concurrent insert: both halves become U+FFFD.
{
  const a = newDoc(1)
  const b = newDoc(2)
  const ua = capture(a)
  const ub = capture(b)
  a.getText('text').insert(0, 'a😀b😀c')
  sync(b, ua[0])
  b.getText('text').insert(2, 'X') // between the halves of the first 😀
  b.getText('text').insert(6, 'Y') // between the halves of the second
  a.getText('text').delete(1, 2)
  const ups = [ua[0], ub[0], ub[1], ua[1]]
  if (ub.length !== 2 || ua.length !== 2) throw new Error('surrogate-split: unexpected updates')
  scenarios.remote.push(remote('surrogate-split', ups, [0, 1, 2, 3]))
  scenarios.remote.push(remote('surrogate-split-shuffled', ups, [3, 2, 0, 1]))
}

// Pending structs and deletes: updates whose dependencies come later.
{
  const a = newDoc(10)
  const b = newDoc(20)
  const ua = capture(a)
  const ub = capture(b)
  const ta = a.getText('text')
  ta.insert(0, 'abc')
  ta.insert(3, 'def')
  sync(b, ua[0])
  sync(b, ua[1])
  b.getText('text').insert(4, 'XYZ')
  b.getText('text').delete(1, 4)
  ta.insert(6, 'ghi')
  const ups = [ua[0], ua[1], ub[0], ub[1], ua[2]]
  const svOf = u => Y.encodeStateVectorFromUpdate(u)
  scenarios.remote.push(remote('pending', ups, [3, 2, 4, 1, 0], { diffSVs: [svOf(ua[0]), new Uint8Array([0])] }))
  scenarios.remote.push(remote('pending-duplicates', ups, [1, 1, 3, 0, 3, 2, 4, 0]))
  // Pending only: what Yjs returns as the state while nothing integrates.
  scenarios.remote.push(remote('pending-only', ups, [4, 3], { diffSVs: [new Uint8Array([0]), svOf(ua[0])] }))
}

// Garbage collection: deleted nested types become GC structs, deleted text
// becomes Deleted content, neighbours merge; and the same without GC.
for (const gc of [true, false]) {
  const a = newDoc(5, gc)
  const ups = capture(a)
  const map = a.getMap('map')
  const inner = new Y.Map()
  map.set('inner', inner)
  const arr = new Y.Array()
  inner.set('arr', arr)
  arr.push(['x', 'y', new Y.Text('deep')])
  arr.get(2).insert(0, 'deep text')
  inner.set('k', 'v')
  inner.set('k', 'w')
  const text = a.getText('text')
  text.insert(0, 'keep delete keep')
  text.delete(5, 7)
  map.delete('inner')
  arr.push(['late']) // into a deleted type
  text.insert(5, 'again')
  scenarios.remote.push(remote(gc ? 'gc' : 'no-gc', ups, ups.map((_, i) => i), { gc }))
  scenarios.remote.push(remote(gc ? 'gc-whole' : 'no-gc-whole', [Y.encodeStateAsUpdate(a)], [0], { gc }))
}

// Formatting cleanup: concurrent bold ranges overlapping in a nested
// Y.XmlText (as Tiptap marks do) leave redundant format items, which the
// receiving doc deletes in a second transaction after the remote one.
{
  const a = newDoc(31)
  const b = newDoc(32)
  const ua = capture(a)
  const ub = capture(b)
  const frag = a.getXmlFragment('xml')
  const p = new Y.XmlElement('paragraph')
  frag.insert(0, [p])
  const t = new Y.XmlText()
  p.insert(0, [t])
  t.insert(0, 'hello world')
  for (const u of ua) sync(b, u)
  const tb = b.getXmlFragment('xml').get(0).get(0)
  t.format(0, 5, { bold: true })
  tb.format(0, 5, { bold: true })
  tb.format(6, 5, { italic: true })
  t.format(6, 5, { italic: { k: 1 } })
  t.delete(1, 2)
  tb.insert(11, '!', { bold: true })
  const ups = [...ua, ...ub]
  scenarios.remote.push(remote('format-cleanup', ups, ups.map((_, i) => i)))
  scenarios.remote.push(remote('format-cleanup-reversed', ups, ups.map((_, i) => ups.length - 1 - i)))
}

// Concurrent inserts at one place from many clients (YATA ordering).
{
  const docs = [3, 1, 4, 1e9, 2 ** 53 - 1, 7].map((c, i) => newDoc(c + i))
  const ups = []
  for (const d of docs) d.on('update', (u, origin) => { if (origin !== 'remote') ups.push(u) })
  docs[0].getText('text').insert(0, 'base')
  for (const d of docs.slice(1)) sync(d, ups[0])
  docs.forEach((d, i) => d.getText('text').insert(2, 'c' + i))
  docs.forEach((d, i) => d.getText('text').insert(i % 3, String.fromCharCode(65 + i)))
  scenarios.remote.push(remote('concurrent', ups, ups.map((_, i) => i)))
  scenarios.remote.push(remote('concurrent-reversed', ups, [0, ...ups.slice(1).map((_, i) => ups.length - 1 - i)]))
}

// Local edits: each step one transaction on Y.Text with a fixed client id;
// the update it emits.
const local = (name, client, steps, setup = null) => {
  const d = newDoc(client)
  // The Y.Text exists before any update arrives, as in an editor: a root
  // first made by an update and only later named a Y.Text loses its
  // _hasFormatting flag in Yjs and edits formatted text through search
  // markers, which place some deletions differently.
  const text = d.getText('text')
  let setupUpdate = null
  if (setup) {
    setupUpdate = setup
    Y.applyUpdate(d, setup)
  }
  let emitted = null
  d.on('update', u => { emitted = u })
  const out = []
  for (const ops of steps) {
    emitted = null
    d.transact(() => {
      for (const [op, pos, arg] of ops) {
        if (op === 'i') text.insert(pos, arg)
        else text.delete(pos, arg)
      }
    })
    out.push({ ops: ops.map(([op, pos, arg]) => op === 'i' ? { insert: arg, pos } : { delete: arg, pos }), update: hex(emitted), text: text.toString() })
  }
  scenarios.local.push({ name, client, setup: hex(setupUpdate), steps: out, state: hex(Y.encodeStateAsUpdate(d)) })
}
local('typing', 77, [
  [['i', 0, 'hello']], [['i', 5, ' world']], [['i', 11, '!']], [['d', 0, 1]], [['i', 0, 'H']],
  [['i', 5, ',']], [['d', 6, 6], ['i', 6, 'there']], [['i', 3, 'LLL']], [['d', 2, 3]],
  [['i', 0, '😀'], ['i', 1, 'x']], [['d', 1, 1]], [['i', 2, 'é']], [['d', 0, 5]], [['i', 0, 'abc'], ['d', 1, 1], ['i', 1, 'B']],
  [['d', 0, 3]], [['i', 0, 'end']]
])
{
  // Edits on top of someone else's text, with formatting present.
  const a = newDoc(1)
  const t = a.getText('text')
  t.insert(0, 'plain bold plain')
  t.format(6, 4, { bold: true })
  t.insertEmbed(0, { img: 1 })
  local('over-formatting', 2, [
    [['i', 7, 'X']], [['i', 11, 'Y']], [['d', 6, 3]], [['i', 0, 'Z']], [['d', 0, 2]], [['i', 10, '😀']], [['d', 5, 9]]
  ], Y.encodeStateAsUpdate(a))
}
writeFileSync('crdt/testdata/yjs.json', JSON.stringify(scenarios, null, 1) + '\n')

// ---- the sequential traces replayed in Yjs ---------------------------------
// One transaction per txn with client id 1, positions converted from code
// points to UTF-16 units. The final state is large, so only its SHA-256 and
// length are kept; crdt's replay must produce the same bytes.
const tracesDir = '../shared/traces/sequential'
const replays = []
if (existsSync(tracesDir)) {
  for (const f of readdirSync(tracesDir).filter(f => f.endsWith('.json.gz')).sort()) {
    const trace = JSON.parse(gunzipSync(readFileSync(`${tracesDir}/${f}`)).toString())
    const doc = newDoc(1)
    const text = doc.getText('text')
    let updateBytes = 0
    doc.on('update', u => { updateBytes += u.length })
    const astral = /[\u{10000}-\u{10FFFF}]/u
    const slow = astral.test(trace.startContent + trace.endContent) || trace.txns.some(t => t.patches.some(p => astral.test(p[2])))
    let cps = Array.from(trace.startContent)
    const units = (from, to) => { let n = 0; for (let i = from; i < to; i++) n += cps[i].length; return n }
    if (trace.startContent) text.insert(0, trace.startContent)
    for (const txn of trace.txns) {
      doc.transact(() => {
        for (const [pos, del, ins] of txn.patches) {
          const upos = slow ? units(0, pos) : pos
          if (del > 0) text.delete(upos, slow ? units(pos, pos + del) : del)
          if (ins) text.insert(upos, ins)
          if (slow) cps.splice(pos, del, ...Array.from(ins))
        }
      })
    }
    if (text.toString() !== trace.endContent) throw new Error(`${f}: Yjs replay does not give endContent`)
    const state = Y.encodeStateAsUpdate(doc)
    replays.push({
      name: f.replace(/\.json\.gz$/, ''),
      stateSHA256: createHash('sha256').update(state).digest('hex'),
      stateBytes: state.length,
      sv: hex(Y.encodeStateVector(doc)),
      updateBytes
    })
  }
}
writeFileSync('crdt/testdata/replays.json', JSON.stringify(replays, null, 1) + '\n')
console.log('wrote crdt/testdata/lib0.json, yjs.json and replays.json')
