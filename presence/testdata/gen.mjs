// Generates the golden files of package presence with the real y-protocols
// (and yjs, lib0) installed in the repository's node_modules, so that the Go
// codec and rules are checked against the reference rather than against
// themselves. The output is committed; run this only to regenerate it:
//
//	node presence/testdata/gen.mjs        (from the repository root)
//
// It writes:
//   golden/<name>.bin   an awareness update as encodeAwarenessUpdate writes it
//   golden/<name>.json  the entries it holds: [{client, clock, state}] where
//                       state is the JSON text exactly as encoded
//   rules/<name>.json   {steps: [{update, changed, states}]}: each update (hex)
//                       applied in order with applyAwarenessUpdate to a fresh
//                       receiver; changed = the sorted client ids of its
//                       'update' event (added, updated, removed); states = the
//                       receiver's remote states afterwards, [client, clock,
//                       JSON text], sorted by client id.
// Everything is deterministic (fixed client ids, a seeded PRNG), so
// regenerating gives the same bytes.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'

const dir = path.dirname(fileURLToPath(import.meta.url))
fs.mkdirSync(path.join(dir, 'golden'), { recursive: true })
fs.mkdirSync(path.join(dir, 'rules'), { recursive: true })

const toDestroy = []

// newAwareness gives an Awareness whose client id is fixed. Its local state
// starts as {} at clock 0, as in every real client.
const newAwareness = (clientID) => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const a = new awarenessProtocol.Awareness(doc)
  toDestroy.push(doc)
  return a
}

// decodeEntries reads back what encodeAwarenessUpdate wrote, to describe
// the golden file in JSON. It reads the bytes itself (not with lib0) so that
// the state text is recorded exactly as it is on the wire.
const describe = (update) => {
  let pos = 0
  const readVarUint = () => {
    let num = 0
    let mult = 1
    for (;;) {
      const r = update[pos++]
      num += (r & 0x7f) * mult
      mult *= 128
      if (r < 0x80) return num
    }
  }
  const entries = []
  const n = readVarUint()
  for (let i = 0; i < n; i++) {
    const client = readVarUint()
    const clock = readVarUint()
    const len = readVarUint()
    const state = new TextDecoder('utf-8', { fatal: true }).decode(update.subarray(pos, pos + len))
    pos += len
    entries.push({ client, clock, state })
  }
  if (pos !== update.length) throw new Error('trailing bytes in generated update')
  return entries
}

const writeGolden = (name, update) => {
  fs.writeFileSync(path.join(dir, 'golden', name + '.bin'), update)
  fs.writeFileSync(path.join(dir, 'golden', name + '.json'), JSON.stringify(describe(update), null, 1) + '\n')
}

// --- golden codec files, all written by encodeAwarenessUpdate ---

{
  const a = newAwareness(1)
  writeGolden('empty', awarenessProtocol.encodeAwarenessUpdate(a, []))
  writeGolden('initial', awarenessProtocol.encodeAwarenessUpdate(a, [1]))
}

{
  // What y-codemirror.next puts in the awareness of an editor.
  const doc = new Y.Doc()
  doc.clientID = 3141592653
  toDestroy.push(doc)
  const ytext = doc.getText('content')
  ytext.insert(0, 'hello world')
  const a = new awarenessProtocol.Awareness(doc)
  a.setLocalStateField('user', { name: 'Ann', color: '#30bced', colorLight: '#30bced33' })
  a.setLocalStateField('cursor', {
    anchor: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, 2)),
    head: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, 7))
  })
  writeGolden('cursor', awarenessProtocol.encodeAwarenessUpdate(a, [doc.clientID]))
  a.setLocalState(null) // what a closing provider sends: null one clock later
  writeGolden('removed', awarenessProtocol.encodeAwarenessUpdate(a, [doc.clientID]))
}

{
  // A receiver that learnt of three peers, one of which left, encodes them all.
  const recv = newAwareness(10)
  for (const id of [11, 12, 13]) {
    const p = newAwareness(id)
    p.setLocalState({ user: { name: 'peer' + id } })
    awarenessProtocol.applyAwarenessUpdate(recv, awarenessProtocol.encodeAwarenessUpdate(p, [id]), 'test')
    if (id === 12) {
      p.setLocalState(null)
      awarenessProtocol.applyAwarenessUpdate(recv, awarenessProtocol.encodeAwarenessUpdate(p, [id]), 'test')
    }
  }
  writeGolden('multi', awarenessProtocol.encodeAwarenessUpdate(recv, [10, 11, 12, 13]))
}

{
  // Integers at every varUint width, up to 2^53-1, for client ids and clocks.
  const ids = [0, 127, 128, 16383, 16384, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]
  const clocks = [0, 1, 128, 16384, 2 ** 21, 2 ** 31, 2 ** 49, Number.MAX_SAFE_INTEGER]
  const a = newAwareness(ids[0])
  ids.forEach((id, i) => {
    a.states.set(id, { i })
    a.meta.set(id, { clock: clocks[i], lastUpdated: 0 })
  })
  writeGolden('integers', awarenessProtocol.encodeAwarenessUpdate(a, ids))
}

{
  const a = newAwareness(7)
  a.setLocalState({
    name: 'Zoë 李 🙂',
    escapes: 'quote " backslash \\ newline \n tab \t nul \u0000',
    lone: '\ud800',
    nested: { a: [1, 2.5, -3e-7, true, false, null], b: {} }
  })
  writeGolden('unicode', awarenessProtocol.encodeAwarenessUpdate(a, [7]))
}

{
  // States need not be objects.
  const a = newAwareness(20)
  const values = [42, 'just a string', true, [1, 'two', null], 0.1]
  values.forEach((v, i) => {
    a.states.set(20 + i, v)
    a.meta.set(20 + i, { clock: i + 1, lastUpdated: 0 })
  })
  writeGolden('scalars', awarenessProtocol.encodeAwarenessUpdate(a, values.map((_, i) => 20 + i)))
}

{
  // String lengths of one, two and three varUint bytes.
  const a = newAwareness(30)
  a.states.set(31, { pad: 'x'.repeat(100) })
  a.meta.set(31, { clock: 1, lastUpdated: 0 })
  a.states.set(32, { pad: 'y'.repeat(20000) })
  a.meta.set(32, { clock: 2, lastUpdated: 0 })
  writeGolden('large', awarenessProtocol.encodeAwarenessUpdate(a, [31, 32]))
}

{
  // What a server that rewrites states (modifyAwarenessUpdate) sends.
  const a = newAwareness(40)
  a.setLocalState({ user: { name: 'Eve' } })
  const u = awarenessProtocol.encodeAwarenessUpdate(a, [40])
  writeGolden('modified', awarenessProtocol.modifyAwarenessUpdate(u, (s) => ({ ...s, verified: false })))
}

// --- rule scenarios: updates crafted entry by entry, applied by the reference ---

const RECEIVER = 999999

// craft encodes entries [client, clock, state] (state a JS value; null
// removes) the way encodeAwarenessUpdate lays them out.
const craft = (entries) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, entries.length)
  for (const [client, clock, state] of entries) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
    encoding.writeVarString(e, JSON.stringify(state))
  }
  return encoding.toUint8Array(e)
}

const hex = (u8) => Buffer.from(u8).toString('hex')

const writeRules = (name, updates) => {
  const recv = newAwareness(RECEIVER)
  let changed = []
  recv.on('update', ({ added, updated, removed }) => {
    changed = added.concat(updated, removed)
  })
  const steps = updates.map((update) => {
    changed = []
    awarenessProtocol.applyAwarenessUpdate(recv, update, 'test')
    const states = []
    for (const [client, state] of recv.getStates()) {
      if (client !== RECEIVER) {
        states.push([client, recv.meta.get(client).clock, JSON.stringify(state)])
      }
    }
    states.sort((x, y) => x[0] - y[0])
    return { update: hex(update), changed: [...new Set(changed)].sort((x, y) => x - y), states }
  })
  fs.writeFileSync(path.join(dir, 'rules', name + '.json'), JSON.stringify({ steps }, null, 1) + '\n')
}

const A = 1001
const B = 1002
const C = 1003

writeRules('stale', [
  craft([[A, 1, { v: 1 }]]),
  craft([[A, 3, { v: 3 }]]),
  craft([[A, 2, { v: 2 }]]), // older clock: ignored
  craft([[A, 3, { v: 'other' }]]) // equal clock, not null: ignored
])

writeRules('equal-null', [
  craft([[A, 2, { v: 2 }]]),
  craft([[A, 2, null]]), // equal clock and null: removes
  craft([[A, 2, { v: 2 }]]), // the removal kept clock 2: no resurrection
  craft([[A, 1, { v: 1 }]]), // nor by an older one
  craft([[A, 2, null]]), // already removed: nothing to do
  craft([[A, 3, { v: 3 }]]) // newer: back
])

writeRules('unknown-null', [
  craft([[B, 5, null]]), // accepted, remembered, but nothing to report
  craft([[B, 4, { v: 4 }]]), // older than the remembered removal
  craft([[B, 6, { v: 6 }]]),
  craft([[B, 7, null]]),
  craft([[B, 9, null]]) // newer null of a removed client: reported again
])

writeRules('clock-zero', [
  craft([[C, 0, {}]]), // a fresh client's first state has clock 0: not newer than 0
  craft([[C, 0, null]]),
  craft([[C, 1, { v: 1 }]])
])

writeRules('one-update', [
  craft([[A, 1, { v: 1 }], [B, 1, { v: 1 }], [A, 2, { v: 2 }], [C, 4, null]]),
  craft([[A, 2, null], [A, 3, { v: 3 }], [B, 1, null], [B, 2, { v: 2 }], [B, 2, null]]),
  craft([[A, 4, { v: 4 }], [A, 4, { v: 4 }], [A, 3, { v: 'old' }]])
])

writeRules('renewal', [
  craft([[A, 1, { user: 'a' }], [B, 1, { user: 'b' }]]),
  craft([[A, 2, { user: 'a' }]]), // same state, newer clock: a renewal, reported
  craft([[B, 2, { user: 'b2' }]])
])

{
  const gen = prng.create(20240601)
  const clients = [A, B, C, 2 ** 40 + 5]
  const updates = []
  for (let i = 0; i < 400; i++) {
    const n = prng.int31(gen, 1, 3)
    const entries = []
    for (let j = 0; j < n; j++) {
      const client = prng.oneOf(gen, clients)
      const clock = prng.int31(gen, 0, 14)
      const state = prng.int31(gen, 0, 9) < 3 ? null : { c: clock, v: prng.word(gen, 0, 6) }
      entries.push([client, clock, state])
    }
    updates.push(craft(entries))
  }
  writeRules('random', updates)
}

for (const doc of toDestroy) doc.destroy() // stops the awareness timers
