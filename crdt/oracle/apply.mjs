// apply.mjs: the reverse differential (Go -> Yjs), driven by crdt/reverse_test.go.
//
//   node crdt/oracle/apply.mjs SCRIPT.json        (cwd = module root)
//
// SCRIPT.json is what the Go test did with several crdt.Docs:
//   { "clients": [id, ...],
//     "events": [ {"peer": p, "ops": [["i", pos, "text"], ["d", pos, n], ...], "update": "<b64 Go emitted>"},
//                 {"peer": p, "apply": [eventIndex, ...]}, ... ] }
// Positions are UTF-16 units. Yjs redoes the same thing with Y.Docs that have
// the same client ids: each edit event is one transaction on that peer's Y.Text
// `content` (Yjs's own update is captured), each apply event applies, in that
// order, the updates Yjs emitted for those edit events. It also applies the Go
// updates, in event order, to a fresh untyped gc:true doc. It prints JSON:
//   { "updates": ["<b64 Yjs emitted for event i>" or ""],
//     "peers": [{text, stateVector, state}],   (after all events)
//     "replay": {text, stateVector, state, pending} }
// Bytes are base64. On a Yjs exception it prints the message on stderr, exit 1.
import * as Y from 'yjs'
import { readFileSync } from 'node:fs'
import { b64, unb64, textOf, hasPending } from './lib.mjs'

const script = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const docs = script.clients.map((client) => {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = client
  return doc
})
const yjsUpdates = script.events.map(() => null)
script.events.forEach((ev, i) => {
  const doc = docs[ev.peer]
  if (ev.ops) {
    let emitted = null
    const onUpdate = (u) => { emitted = emitted === null ? u : Y.mergeUpdates([emitted, u]) }
    doc.on('update', onUpdate)
    const text = doc.getText('content')
    doc.transact(() => {
      for (const op of ev.ops) {
        if (op[0] === 'i') text.insert(op[1], op[2])
        else if (op[0] === 'd') text.delete(op[1], op[2])
        else throw new Error(`event ${i}: unknown op ${JSON.stringify(op)}`)
      }
    })
    doc.off('update', onUpdate)
    yjsUpdates[i] = emitted
  } else {
    for (const j of ev.apply) {
      if (yjsUpdates[j] !== null) Y.applyUpdate(doc, yjsUpdates[j], 'remote')
    }
  }
})

const replay = new Y.Doc({ gc: true })
replay.clientID = 0
for (const ev of script.events) {
  if (ev.ops && ev.update) Y.applyUpdate(replay, unb64(ev.update), 'remote')
}

const state = (doc) => ({
  text: textOf(doc, 'content'),
  stateVector: b64(Y.encodeStateVector(doc)),
  state: b64(Y.encodeStateAsUpdate(doc))
})
process.stdout.write(JSON.stringify({
  updates: yjsUpdates.map(u => u === null ? '' : b64(u)),
  peers: docs.map(state),
  replay: { ...state(replay), pending: hasPending(replay) }
}) + '\n')
