// Writes golden.json: y-protocols messages built by y-protocols itself (the
// functions the stock y-websocket provider and reference server call), so the
// Go codec is checked against the real bytes. Run from the module root:
//   node protocol/testdata/gen.mjs
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const hex = (u8) => Buffer.from(u8).toString('hex')
const cases = []
const add = (name, fields, build) => {
  const e = encoding.createEncoder()
  build(e)
  cases.push({ name, hex: hex(encoding.toUint8Array(e)), ...fields })
}

const empty = new Y.Doc()
const doc = new Y.Doc()
doc.clientID = 42
doc.getText('content').insert(0, 'hello quire')
const big = new Y.Doc()
big.clientID = 7
big.getText('content').insert(0, 'x'.repeat(20000)) // a payload whose length needs 3 varUint bytes
const updates = []
const typing = new Y.Doc()
typing.clientID = 99
typing.on('update', (u) => updates.push(u))
typing.getText('content').insert(0, 'a')

const awareness = new awarenessProtocol.Awareness(doc)
awareness.setLocalState({ user: { name: 'Ann', color: '#d1495b' } })

const step1 = (d) => (e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, d) }
add('step1-empty-doc', { type: 0, sync: 0, payload: hex(Y.encodeStateVector(empty)) }, step1(empty))
add('step1', { type: 0, sync: 0, payload: hex(Y.encodeStateVector(doc)) }, step1(doc))
// The server's answer to a client's step 1, as the reference server builds it.
const answer = (d, sv) => (e) => {
  encoding.writeVarUint(e, 0)
  syncProtocol.readSyncStep1(decoding.createDecoder(encoding.toUint8Array((() => {
    const s = encoding.createEncoder(); encoding.writeVarUint8Array(s, sv); return s
  })())), e, d)
}
add('step2-empty-update', { type: 0, sync: 1, payload: hex(Y.encodeStateAsUpdate(empty)) }, (e) => {
  encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, empty)
})
add('step2', { type: 0, sync: 1, payload: hex(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(empty))) }, answer(doc, Y.encodeStateVector(empty)))
add('step2-large', { type: 0, sync: 1, payload: hex(Y.encodeStateAsUpdate(big)) }, (e) => {
  encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, big)
})
add('update', { type: 0, sync: 2, payload: hex(updates[0]) }, (e) => {
  encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, updates[0])
})
const aw = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])
add('awareness', { type: 1, payload: hex(aw) }, (e) => {
  encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, aw)
})
add('query-awareness', { type: 3 }, (e) => { encoding.writeVarUint(e, 3) })
add('permission-denied', { type: 2, reason: 'token expired: ask for a new link' }, (e) => {
  encoding.writeVarUint(e, 2); authProtocol.writePermissionDenied(e, 'token expired: ask for a new link')
})
add('permission-denied-unicode', { type: 2, reason: 'kein Zugriff – nur lesen' }, (e) => {
  encoding.writeVarUint(e, 2); authProtocol.writePermissionDenied(e, 'kein Zugriff – nur lesen')
})

fs.writeFileSync(path.join(HERE, 'golden.json'), JSON.stringify(cases, null, 1) + '\n')
awareness.destroy() // its renewal interval would keep the process alive
console.log(`wrote ${cases.length} cases to ${path.join(HERE, 'golden.json')}`)
