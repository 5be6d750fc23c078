// gen.mjs records differential test cases from real Yjs for crdt/differential_test.go.
//
//   node crdt/oracle/gen.mjs --out DIR --seeds 1-30 [--profile NAME] [--steps N]
//
// For each seed, 3-5 Y.Docs with fixed client ids (derived from the seed, some of
// them large 53-bit ids) edit concurrently: text with astral characters split in
// the middle of surrogate pairs, pastes, formatting and embeds, maps, arrays,
// y-prosemirror-style XML, nested types that get deleted, subdocuments. Peers go
// offline for many steps, sync partially in random orders, through merged
// updates (as a server relays them) and state-vector diffs (sync step 2). Every
// update a peer emits from a local transaction is recorded. Then several replay
// orders of those updates (shuffled, reversed so dependencies come later, with
// duplicates, merged chunks, snapshot + log, batched in one transaction) are
// applied by real Yjs into a fresh gc:true doc, and for each order the file holds
// what Yjs ends with (and at some midpoints): text of `content`, encoded state
// vector, encoded state, and the updates the doc emitted per step.
//
// The format is described in crdt/oracle/README.md.
import * as Y from 'yjs'
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Rng, b64, replay, textOf, hasPending, bytesEqual } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const YJS_VERSION = JSON.parse(readFileSync(join(here, '../../node_modules/yjs/package.json'), 'utf8')).version

export const PROFILES = ['text', 'format', 'map', 'array', 'xml', 'nested', 'mixed']

// What each profile edits, as weights of edit kinds.
const PROFILE_EDITS = {
  text: [[100, 'text']],
  format: [[100, 'ftext']],
  map: [[30, 'text'], [50, 'map'], [20, 'nestedEdit']],
  array: [[30, 'text'], [50, 'array'], [20, 'nestedEdit']],
  xml: [[15, 'text'], [85, 'xml']],
  nested: [[15, 'text'], [25, 'map'], [25, 'array'], [35, 'nestedEdit']],
  mixed: [[20, 'text'], [10, 'ftext'], [15, 'map'], [15, 'array'], [25, 'xml'], [15, 'nestedEdit']]
}

const ASTRAL = ['😀', '👍🏽', '🇫🇷', '𝔘', '🎉', '👩‍👩‍👧', '🧪', '𠜎', '🤖']
const BMP = ['é', 'ß', '中', '文', 'ø', '–', '…', 'ĳ', 'e\u0301', '€']
const ASCII = 'abcdefghijklmnopqrstuvwxyz      ,.\n'

// astralOff is set by editOnce for a sim with bmpOnly: randString then never
// picks an astral character (the random draws stay the same).
let astralOff = false

const randString = (rnd, astral) => {
  if (astralOff) astral = 0
  const n = rnd.weighted([[65, 1], [20, rnd.range(2, 8)], [15, rnd.range(10, 40)]])
  let s = ''
  for (let i = 0; i < n; i++) {
    const r = rnd.next()
    if (r < astral) s += rnd.pick(ASTRAL)
    else if (r < astral + 0.08) s += rnd.pick(BMP)
    else s += ASCII[rnd.int(ASCII.length)]
  }
  return s
}

const TEXT_ATTRS = [
  { bold: true }, { italic: true }, { bold: null }, { italic: null }, { color: '#c00' },
  { link: { href: 'https://example.com/a' } }, { bold: true, italic: true }, { color: null }
]
// y-prosemirror turns marks into text attributes {markName: markAttrs}.
const PM_MARKS = [
  { bold: {} }, { italic: {} }, { bold: null }, { code: {} },
  { link: { href: 'https://quire.example/x', target: '_blank', rel: 'noopener', class: null } }, { italic: null }
]

// randValue returns a value for Y.Map.set / Y.Array.insert: every lib0 `any`
// kind (with edge numbers: -0, 2^31 boundaries, float32-exact and not, NaN,
// Infinity, bigint), byte arrays (ContentBinary), and with `types` nested Yjs
// types carrying prelim content, and rarely a subdocument (ContentDoc).
const randValue = (rnd, types, sim, inMap = false) => {
  const kinds = [
    [10, 'int'], [3, 'edgeNum'], [3, 'float'], [10, 'string'], [4, 'bool'], [3, 'null'], [1, 'undefined'],
    [4, 'array'], [4, 'object'], [3, 'binary'], [1, 'bigint']
  ]
  if (types) kinds.push([6, 'ymap'], [6, 'yarray'], [5, 'ytext'], [2, 'yxml'], [1, 'subdoc'])
  switch (rnd.weighted(kinds)) {
    case 'int': return rnd.range(-100, 1000)
    case 'edgeNum': return rnd.pick([-0, 2147483647, 2147483648, -2147483648, -2147483649, 2 ** 33, 123456789012, 2 ** 53 - 1, -(2 ** 40)])
    case 'float': return rnd.pick([0.5, 1.1, 3.25, -7.75, 1e300, NaN, Infinity, -Infinity, 0.1 + 0.2])
    case 'string': return rnd.chance(0.2) ? '' : randString(rnd, 0.2)
    case 'bool': return rnd.chance(0.5)
    case 'null': return null
    // Yjs takes undefined and bigint only inside ContentAny containers (a map
    // value may be undefined itself); lib0 encodes them there (tags 127, 122)
    case 'undefined': return inMap ? undefined : [undefined, { u: undefined }]
    case 'array': return [rnd.int(10), 'x' + rnd.int(10), null, rnd.chance(0.5), [1.5, '😀']]
    case 'object': return { a: rnd.int(100), b: 'é' + rnd.int(9), c: [true, null], d: { e: -1 } }
    case 'binary': return new Uint8Array(rnd.range(0, 6)).map(() => rnd.int(256))
    case 'bigint': return { big: rnd.pick([2n ** 60n, -(2n ** 63n), 5n]) }
    case 'ymap': {
      const m = new Y.Map()
      const n = rnd.int(3)
      for (let i = 0; i < n; i++) m.set('k' + rnd.int(4), randValue(rnd, false, sim, true))
      return m
    }
    case 'yarray': {
      const a = new Y.Array()
      const n = rnd.int(4)
      for (let i = 0; i < n; i++) a.push([randValue(rnd, false, sim)])
      return a
    }
    case 'ytext': return new Y.Text(randString(rnd, 0.2))
    case 'yxml': { // nested XML types (type refs XmlFragment and XmlElement outside an XML tree)
      const x = rnd.chance(0.5) ? new Y.XmlFragment() : new Y.XmlElement('div')
      const t = new Y.XmlText()
      t.insert(0, randString(rnd, 0.2) || 'z')
      x.insert(0, [t])
      return x
    }
    case 'subdoc': {
      const opts = { guid: 'sub-' + sim.seed + '-' + rnd.u32().toString(16) }
      if (rnd.chance(0.5)) opts.autoLoad = true
      if (rnd.chance(0.3)) opts.gc = false
      if (rnd.chance(0.3)) opts.meta = { title: 'note ' + rnd.int(9) }
      return new Y.Doc(opts)
    }
  }
}

// textEdit performs one random edit of a Y.Text (or Y.XmlText). Positions are
// UTF-16 units drawn uniformly, so with astral text they often fall inside a
// surrogate pair, as they can when an editor maps positions badly.
const textEdit = (rnd, t, fmt, attrsPool, astral) => {
  const L = t.length
  const kinds = [[55, 'ins'], [30, 'del']]
  if (fmt) kinds.push([8, 'format'], [6, 'insAttrs'], [3, 'embed'])
  let kind = rnd.weighted(kinds)
  if (L === 0 && (kind === 'del' || kind === 'format')) kind = 'ins'
  switch (kind) {
    case 'ins': t.insert(rnd.int(L + 1), randString(rnd, astral)); break
    case 'del': {
      const pos = rnd.int(L)
      const n = rnd.chance(0.75) ? rnd.range(1, Math.min(3, L - pos)) : rnd.range(1, L - pos)
      t.delete(pos, n)
      break
    }
    case 'format': {
      const pos = rnd.int(L)
      t.format(pos, rnd.range(1, Math.min(L - pos, 12)), rnd.pick(attrsPool))
      break
    }
    case 'insAttrs': t.insert(rnd.int(L + 1), randString(rnd, astral), rnd.pick(attrsPool)); break
    case 'embed': {
      const attrs = rnd.chance(0.3) ? rnd.pick(attrsPool) : undefined
      t.insertEmbed(rnd.int(L + 1), { image: 'img' + rnd.int(100) + '.png' }, attrs)
      break
    }
  }
}

// collect walks the live (non-deleted) types of a doc in document order.
const collect = (doc, xmlRoot) => {
  const out = { texts: [], maps: [], arrays: [], xmlTexts: [], elements: [], fragments: [] }
  const walk = (t) => {
    if (t instanceof Y.XmlText) { out.xmlTexts.push(t); return }
    if (t instanceof Y.Text) { out.texts.push(t); return }
    if (t instanceof Y.XmlHook) { out.maps.push(t); return }
    if (t instanceof Y.Map) {
      out.maps.push(t)
      for (const k of Array.from(t.keys()).sort()) {
        const v = t.get(k)
        if (v instanceof Y.AbstractType) walk(v)
      }
      return
    }
    if (t instanceof Y.Array) {
      out.arrays.push(t)
      for (const v of t.toArray()) if (v instanceof Y.AbstractType) walk(v)
      return
    }
    if (t instanceof Y.XmlElement) out.elements.push(t)
    else if (t instanceof Y.XmlFragment) out.fragments.push(t)
    if (t instanceof Y.XmlFragment) for (const c of t.toArray()) walk(c)
  }
  walk(doc.getMap('meta'))
  walk(doc.getArray('list'))
  walk(doc.getXmlFragment(xmlRoot))
  return out
}

// pmBlock builds a block as y-prosemirror / Tiptap would create it from a
// ProseMirror node: elements named after node types, attributes from node
// attrs, XmlText children whose attributes are the marks.
const pmBlock = (rnd, depth = 0) => {
  const text = () => {
    const t = new Y.XmlText()
    t.insert(0, randString(rnd, 0.1) || 'x', rnd.chance(0.3) ? rnd.pick(PM_MARKS.filter(m => !Object.values(m).includes(null))) : undefined)
    return t
  }
  const kind = rnd.weighted([[50, 'paragraph'], [15, 'heading'], [depth < 2 ? 10 : 0, 'bulletList'], [depth < 2 ? 8 : 0, 'blockquote'], [5, 'image'], [8, 'inline'], [2, 'hook']])
  switch (kind) {
    case 'paragraph': {
      const p = new Y.XmlElement('paragraph')
      if (rnd.chance(0.2)) p.setAttribute('textAlign', rnd.pick(['left', 'center', 'right']))
      if (rnd.chance(0.8)) p.insert(0, [text()])
      return p
    }
    case 'heading': {
      const h = new Y.XmlElement('heading')
      h.setAttribute('level', rnd.range(1, 3))
      h.insert(0, [text()])
      return h
    }
    case 'bulletList': {
      const ul = new Y.XmlElement('bulletList')
      const n = rnd.range(1, 3)
      for (let i = 0; i < n; i++) {
        const li = new Y.XmlElement('listItem')
        li.insert(0, [pmBlock(rnd, depth + 1)])
        ul.insert(i, [li])
      }
      return ul
    }
    case 'blockquote': {
      const q = new Y.XmlElement('blockquote')
      q.insert(0, [pmBlock(rnd, depth + 1)])
      return q
    }
    case 'image': {
      const img = new Y.XmlElement('image')
      img.setAttribute('src', 'https://quire.example/i' + rnd.int(50) + '.png')
      img.setAttribute('alt', rnd.chance(0.5) ? 'a picture 📷' : null)
      return img
    }
    case 'inline': { // a paragraph with an inline node between two text runs
      const p = new Y.XmlElement('paragraph')
      p.insert(0, [text(), new Y.XmlElement('hardBreak'), text()])
      return p
    }
    case 'hook': {
      const hook = new Y.XmlHook('widget')
      hook.set('kind', 'chart')
      hook.set('size', rnd.int(10))
      return hook
    }
  }
}

const xmlEdit = (rnd, doc, sim) => {
  const live = collect(doc, sim.xmlRoot)
  const containers = [...live.fragments, ...live.elements.filter(e => ['bulletList', 'listItem', 'blockquote'].includes(e.nodeName))]
  const kind = rnd.weighted([[25, 'insertBlock'], [40, 'type'], [12, 'attr'], [15, 'deleteBlock'], [3, 'directText']])
  switch (kind) {
    case 'insertBlock': {
      const c = rnd.pick(containers)
      c.insert(rnd.int(c.length + 1), [pmBlock(rnd)])
      return
    }
    case 'type': {
      if (live.xmlTexts.length === 0) return xmlEdit(rnd, doc, sim)
      textEdit(rnd, rnd.pick(live.xmlTexts), rnd.chance(0.6), PM_MARKS, 0.1)
      return
    }
    case 'attr': {
      if (live.elements.length === 0) return
      const el = rnd.pick(live.elements)
      if (rnd.chance(0.25)) el.removeAttribute(rnd.pick(['textAlign', 'level', 'alt', 'id']))
      else el.setAttribute(rnd.pick(['textAlign', 'level', 'id', 'alt']), rnd.pick(['center', 2, 'p-' + rnd.int(99), null, true]))
      return
    }
    case 'deleteBlock': {
      const c = rnd.pick([...containers, ...live.elements.filter(e => e.length > 0)])
      if (c.length === 0) return
      const pos = rnd.int(c.length)
      c.delete(pos, rnd.range(1, Math.min(2, c.length - pos)))
      return
    }
    case 'directText': { // XmlText directly under the fragment (y-prosemirror does this for text-only schemas)
      const c = rnd.pick(live.fragments)
      const t = new Y.XmlText()
      t.insert(0, randString(rnd, 0.2) || 'y')
      c.insert(rnd.int(c.length + 1), [t])
    }
  }
}

const MAP_KEYS = ['title', 'author', 'count', 'tags', 'flag', 'nested', 'x']

const mapEdit = (rnd, m, sim) => {
  if (m.size > 0 && rnd.chance(0.25)) {
    m.delete(rnd.pick(Array.from(m.keys()).sort()))
  } else {
    m.set(rnd.pick(MAP_KEYS), randValue(rnd, true, sim, true))
  }
}

const arrayEdit = (rnd, a, sim) => {
  if (a.length > 0 && rnd.chance(0.35)) {
    const pos = rnd.int(a.length)
    a.delete(pos, rnd.range(1, Math.min(3, a.length - pos)))
  } else {
    const n = rnd.range(1, 3)
    const vals = []
    for (let i = 0; i < n; i++) vals.push(randValue(rnd, true, sim))
    a.insert(rnd.int(a.length + 1), vals)
  }
}

const nestedEdit = (rnd, doc, sim) => {
  const live = collect(doc, sim.xmlRoot)
  const targets = [
    ...live.texts.map(t => ['text', t]),
    ...live.maps.slice(1).map(t => ['map', t]), // [0] is the root map
    ...live.arrays.slice(1).map(t => ['array', t])
  ]
  if (targets.length === 0) return rnd.chance(0.5) ? mapEdit(rnd, doc.getMap('meta'), sim) : arrayEdit(rnd, doc.getArray('list'), sim)
  const [kind, t] = rnd.pick(targets)
  if (kind === 'text') textEdit(rnd, t, rnd.chance(0.3), TEXT_ATTRS, 0.2)
  else if (kind === 'map') mapEdit(rnd, t, sim)
  else arrayEdit(rnd, t, sim)
}

// editOnce makes one random edit of the profile's kinds in doc (inside the
// caller's transaction). sim carries xmlRoot (the XmlFragment's name), seed
// (part of subdocument guids) and, optionally, bmpOnly: no astral characters
// in inserted text, so no position can split a surrogate pair. The e2e tests
// use that: Yjs peers that split a pair can diverge for good (README), and
// live clients have no oracle to tell which copy is right.
export const editOnce = (rnd, doc, profile, sim) => {
  astralOff = Boolean(sim.bmpOnly)
  try {
    switch (rnd.weighted(PROFILE_EDITS[profile])) {
      case 'text': textEdit(rnd, doc.getText('content'), false, TEXT_ATTRS, profile === 'text' ? 0.3 : 0.15); break
      case 'ftext': textEdit(rnd, doc.getText('content'), true, TEXT_ATTRS, 0.15); break
      case 'map': mapEdit(rnd, doc.getMap('meta'), sim); break
      case 'array': arrayEdit(rnd, doc.getArray('list'), sim); break
      case 'xml': xmlEdit(rnd, doc, sim); break
      case 'nestedEdit': nestedEdit(rnd, doc, sim); break
    }
  } finally {
    astralOff = false
  }
}

// pickClients derives 3-5 distinct non-zero client ids from the seed, mixing
// small ids, 32-bit ids and large 53-bit ids (lib0 var uints up to 8 bytes).
const pickClients = (rnd, n) => {
  const ids = new Set()
  while (ids.size < n) {
    const id = rnd.weighted([
      [30, () => rnd.range(1, 2000)],
      [25, () => rnd.range(2 ** 31 - 5, 2 ** 32 + 5)],
      [30, () => rnd.u53()],
      [15, () => 2 ** 53 - 1 - rnd.int(3)]
    ])()
    if (id !== 0) ids.add(id)
  }
  return Array.from(ids)
}

// simulate runs the peers and returns the recorded updates and the converged peers.
export const simulate = (seed, profile, stepsOverride, onStep) => {
  const rnd = new Rng(seed)
  const sim = { seed, xmlRoot: rnd.chance(0.5) ? 'prosemirror' : 'default' }
  const nPeers = rnd.range(3, 5)
  const clients = pickClients(rnd, nPeers)
  const steps = stepsOverride || rnd.range(45, 90)
  const log = [] // {kind, peer, bytes, published}
  const relayed = [] // merged updates and diffs some peer applied
  const snapshots = [] // {bytes, known}
  const peers = clients.map((client, idx) => {
    const doc = new Y.Doc({ gc: true })
    doc.clientID = client
    const p = { idx, client, doc, known: new Set(), online: true, offlineFor: 0 }
    doc.on('update', (u, origin, d, tr) => {
      if (!tr.local) return
      const i = log.length
      log.push({ kind: 'local', peer: idx, bytes: u, published: p.online })
      p.known.add(i)
    })
    // Editors type the roots they use; this also makes remote transactions run
    // Y.Text's formatting cleanup on the peers (their cleanups are recorded).
    doc.getText('content'); doc.getMap('meta'); doc.getArray('list'); doc.getXmlFragment(sim.xmlRoot)
    return p
  })
  const unknownTo = (p) => log.map((u, i) => i).filter(i => log[i].published && !p.known.has(i))

  const deliver = (p, idxs, how) => {
    if (idxs.length === 0) return
    if (how === 'merged') {
      const m = Y.mergeUpdates(idxs.map(i => log[i].bytes))
      if (relayed.length < 12) relayed.push({ kind: 'merged', peer: p.idx, bytes: m })
      Y.applyUpdate(p.doc, m, 'remote')
    } else if (how === 'batch') {
      Y.transact(p.doc, () => { for (const i of idxs) Y.applyUpdate(p.doc, log[i].bytes, 'remote') }, 'remote', false)
    } else {
      for (const i of idxs) Y.applyUpdate(p.doc, log[i].bytes, 'remote')
    }
    for (const i of idxs) p.known.add(i)
  }

  for (let step = 0; step < steps; step++) {
    for (const p of peers) {
      if (!p.online && --p.offlineFor <= 0) {
        p.online = true
        for (const u of log) if (u.peer === p.idx) u.published = true
      }
    }
    const p = rnd.pick(peers)
    const action = rnd.weighted([[60, 'edit'], [22, 'pull'], [6, 'stateSync'], [4, 'offline'], [2, 'snapshot']])
    if (action === 'edit') {
      const n = rnd.weighted([[70, 1], [20, 2], [10, 3]])
      p.doc.transact(() => {
        for (let i = 0; i < n; i++) editOnce(rnd, p.doc, profile, sim)
      })
    } else if (!p.online) {
      continue
    } else if (action === 'pull') {
      const missing = rnd.shuffle(unknownTo(p))
      const k = rnd.range(1, Math.max(1, Math.min(missing.length, 10)))
      deliver(p, missing.slice(0, k), rnd.weighted([[60, 'one'], [25, 'merged'], [15, 'batch']]))
    } else if (action === 'stateSync') {
      const q = rnd.pick(peers.filter(x => x.online && x !== p))
      if (!q) continue
      const d = Y.encodeStateAsUpdate(q.doc, Y.encodeStateVector(p.doc))
      if (relayed.length < 12) relayed.push({ kind: 'diff', peer: p.idx, bytes: d })
      Y.applyUpdate(p.doc, d, 'remote')
      for (const i of q.known) p.known.add(i)
    } else if (action === 'offline') {
      p.online = false
      p.offlineFor = rnd.range(8, 40)
    } else if (action === 'snapshot' && snapshots.length < 2) {
      snapshots.push({ bytes: Y.encodeStateAsUpdate(p.doc), known: new Set(p.known) })
    }
    if (onStep) onStep(step, action, p, peers)
  }
  // Everyone comes back and syncs until nothing is missing (formatting cleanups
  // that the last deliveries trigger emit new updates, hence the loop).
  for (const p of peers) p.online = true
  for (const u of log) u.published = true
  // Yjs can leave structs pending for good although everything they need has
  // arrived: the missing clocks it keeps are not refreshed when pending sets
  // merge, and it retries only when an update advances one of the clients they
  // name. A provider heals such a peer on its next sync step; so does this, with
  // a state diff from a peer that has nothing pending.
  const healed = []
  const heal = () => {
    const healthy = peers.find(q => !hasPending(q.doc))
    let any = false
    for (const p of peers) {
      if (!healthy || !hasPending(p.doc) || healed.filter(i => i === p.idx).length >= 3) continue
      Y.applyUpdate(p.doc, Y.encodeStateAsUpdate(healthy.doc, Y.encodeStateVector(p.doc)), 'remote')
      healed.push(p.idx)
      any = true
    }
    return any
  }
  for (let round = 0; round < 20; round++) {
    let delivered = false
    for (const p of rnd.shuffle(peers)) {
      const missing = rnd.shuffle(unknownTo(p))
      if (missing.length > 0) {
        delivered = true
        deliver(p, missing, rnd.weighted([[70, 'one'], [15, 'merged'], [15, 'batch']]))
      }
    }
    if (!delivered && !heal()) break
  }
  return { rnd, sim, clients, log, relayed, snapshots, peers, healed }
}

// canonical JSON of a doc's non-text roots (keys sorted: Y.Map iterates in the
// order a peer happened to receive the keys)
const canon = (v) => {
  if (typeof v === 'bigint') return v.toString() + 'n'
  if (v === undefined) return '<undefined>'
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  if (v instanceof Uint8Array) return Array.from(v)
  if (Array.isArray(v)) return v.map(canon)
  if (v !== null && typeof v === 'object') {
    if (v instanceof Y.Doc) return 'doc:' + v.guid
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}
export const docJSON = (doc, xmlRoot) => JSON.stringify(canon({
  meta: doc.getMap('meta').toJSON(),
  list: doc.getArray('list').toJSON(),
  xml: doc.getXmlFragment(xmlRoot).toString()
}))

// chunkify partitions xs into consecutive chunks of random size in [1, max].
const chunkify = (rnd, xs, max) => {
  const out = []
  for (let i = 0; i < xs.length;) {
    const n = rnd.range(1, max)
    out.push(xs.slice(i, i + n))
    i += n
  }
  return out
}

export const generate = (seed, profile, stepsOverride) => {
  const { rnd, sim, clients, log, relayed, snapshots, peers, healed } = simulate(seed, profile, stepsOverride)
  const problems = [] // a bug of this generator or of Yjs that makes the recording useless
  const notes = [] // Yjs behaviour worth knowing, recorded as it is
  for (const i of new Set(healed)) notes.push(`peer ${i} kept structs pending after the last sync although their dependencies had arrived; a state diff healed it`)
  // Convergence of the peers themselves. Yjs peers can diverge: a no-op local
  // edit whose boundary falls inside a surrogate pair (a format that changes
  // nothing, say) splits the pair into two U+FFFD on that peer only and merges
  // the halves back, so no other peer ever learns of it. The recording keeps
  // such peers (their states and diffs are updates like any other).
  const t0 = peers[0].doc.getText('content').toString()
  const sv0 = Y.encodeStateVector(peers[0].doc)
  const j0 = docJSON(peers[0].doc, sim.xmlRoot)
  let diverged = false
  for (const p of peers) {
    if (hasPending(p.doc)) problems.push(`peer ${p.idx} still has pending structs`)
    if (!bytesEqual(Y.encodeStateVector(p.doc), sv0)) problems.push(`peer ${p.idx} state vector differs`)
    if (p.doc.getText('content').toString() !== t0 || docJSON(p.doc, sim.xmlRoot) !== j0) diverged = true
  }
  if (diverged) notes.push('peers diverged (local surrogate-pair split, see the comment in gen.mjs)')

  const updates = []
  const add = (kind, peer, bytes) => { updates.push({ kind, peer, bytes }); return updates.length - 1 }
  const locals = log.map(u => add('local', u.peer, u.bytes))
  const relayedIdx = relayed.map(r => add(r.kind, r.peer, r.bytes))
  const snapIdx = snapshots.map(s => add('snapshot', -1, s.bytes))
  const pi = rnd.int(peers.length)
  const pj = (pi + 1 + rnd.int(peers.length - 1)) % peers.length
  const peerStateIdx = [pi, pj].map(k => add('peerstate', k, Y.encodeStateAsUpdate(peers[k].doc)))
  const chunkIdx = rnd.shuffle(chunkify(rnd, rnd.shuffle(locals), 8)).map(ch => add('chunk', -1, Y.mergeUpdates(ch.map(i => updates[i].bytes))))

  // The replay orders. Each delivers every local update at least once (or a
  // state that holds them all), so every order ends in the converged document.
  const withDups = (xs) => {
    const out = xs.slice()
    const n = Math.ceil(xs.length * 0.3)
    for (let i = 0; i < n; i++) out.splice(rnd.int(out.length + 1), 0, rnd.pick(xs))
    return out
  }
  const third = (n) => [Math.floor(n / 3), Math.floor(2 * n / 3)]
  const orders = []
  orders.push({ name: 'emission', localsOnly: true, seq: locals, emitted: true, at: third(locals.length) })
  orders.push({ name: 'shuffled', localsOnly: true, seq: rnd.shuffle(locals), emitted: true, at: third(locals.length) })
  orders.push({ name: 'reversed', localsOnly: true, seq: locals.slice().reverse(), at: [Math.floor(locals.length / 2)] })
  orders.push({ name: 'duplicated', localsOnly: true, seq: withDups(rnd.shuffle(locals)), at: [] })
  if (relayedIdx.length > 0) {
    // what a peer gets from a relaying server: merged batches and sync-step-2
    // diffs interleaved with single updates, all shuffled
    orders.push({ name: 'relayed', seq: rnd.shuffle([...relayedIdx, ...locals]), at: [] })
  }
  orders.push({ name: 'chunks', localsOnly: true, seq: chunkIdx, emitted: true, at: [Math.floor(chunkIdx.length / 2)] })
  snapshots.forEach((s, i) => {
    // snapshot + log, as persistence loads a document; plus some duplicates of
    // what the snapshot already holds
    const rest = locals.filter(k => !s.known.has(k))
    const dup = rnd.shuffle(locals.filter(k => s.known.has(k))).slice(0, 5)
    orders.push({ name: `snapshot${i}`, seq: [snapIdx[i], ...rnd.shuffle([...rest, ...dup])], emitted: true, at: [1] })
  })
  orders.push({ name: `peerstates${pi}-${pj}`, seq: peerStateIdx, emitted: true, at: [] })
  orders.push({ name: 'batched', localsOnly: true, batches: chunkify(rnd, rnd.shuffle(locals), 8), emitted: true, at: [] })
  orders.push({ name: 'batchedEmission', localsOnly: true, batches: chunkify(rnd, locals, 12), at: [] })
  orders.push({ name: 'batchedAll', localsOnly: true, batches: [rnd.shuffle(locals)], emitted: true, at: [] })

  // Every byte string of the recording lives once in `blobs` and is referred
  // to by index: full states repeat a lot (orders that end alike, peer states,
  // an emitted update that is the applied update itself).
  const blobs = []
  const blobIndex = new Map()
  const blob = (bytes) => {
    const s = b64(bytes)
    let i = blobIndex.get(s)
    if (i === undefined) { i = blobs.length; blobs.push(s); blobIndex.set(s, i) }
    return i
  }
  const stateIndex = blob
  const outOrders = []
  let finalState = null
  let finalText = null
  let invariant = true
  const variants = []
  for (const o of orders) {
    const batched = !!o.batches
    const steps = batched ? o.batches : o.seq.map(k => [k])
    const at = [...new Set([...o.at.filter(n => n > 0 && n < steps.length), steps.length])].sort((a, b) => a - b)
    const { emitted, snaps, stuckFrom, ideal } = replay(updates.map(u => u.bytes), steps, batched, at)
    const checkpoints = at.map(n => {
      const s = snaps.get(n)
      return { after: n, text: s.text, stateVector: b64(s.stateVector), state: stateIndex(s.state), pending: s.pending }
    })
    let fin = snaps.get(steps.length)
    if (stuckFrom !== null) {
      notes.push(`order ${o.name}: Yjs left structs pending from step ${stuckFrom} on although their dependencies had arrived`)
      fin = { ...fin, ...ideal, pending: false }
    }
    if (!bytesEqual(fin.stateVector, sv0)) problems.push(`order ${o.name}: state vector differs from the peers'`)
    if (fin.pending) problems.push(`order ${o.name}: pending structs left`)
    if (finalState === null) { finalState = fin.state; finalText = fin.text }
    else if (stuckFrom === null && !bytesEqual(finalState, fin.state)) {
      variants.push(o.name)
      if (o.localsOnly) invariant = false
    }
    if (finalText !== fin.text) {
      // the local updates alone must always converge; states and diffs of a
      // diverged peer carry its U+FFFD halves instead of the pair
      if (o.localsOnly) problems.push(`order ${o.name}: text differs from order ${orders[0].name}`)
      else notes.push(`order ${o.name}: text differs from order ${orders[0].name}`)
    }
    const out = { name: o.name }
    if (o.localsOnly) out.localsOnly = true
    if (stuckFrom !== null) {
      // Yjs's results from this step on are its pending-retry bug: the Go
      // test compares up to the step before, then only the final text and
      // state vector, with `ideal`
      out.yjsStuckFrom = stuckFrom
      out.ideal = { text: ideal.text, stateVector: b64(ideal.stateVector) }
    }
    if (batched) out.batches = o.batches
    else out.seq = o.seq
    if (o.emitted) out.emitted = emitted.map(list => list.map(blob))
    out.checkpoints = checkpoints
    outOrders.push(out)
  }
  const peerStates = peers.map(p => {
    const st = Y.encodeStateAsUpdate(p.doc)
    if (!bytesEqual(st, finalState)) variants.push('peer' + p.idx)
    return { client: p.client, text: p.doc.getText('content').toString(), stateVector: b64(Y.encodeStateVector(p.doc)), state: stateIndex(st) }
  })
  if (finalText !== t0) notes.push('the peers\' text differs from the local updates\' (states of a diverged peer spread its U+FFFD)')
  if (variants.length > 0) notes.push(`encoded state differs from order ${orders[0].name} in: ${variants.join(' ')}`)
  return {
    problems,
    notes,
    invariant,
    rec: {
      format: 1,
      generator: 'crdt/oracle/gen.mjs',
      yjs: YJS_VERSION,
      seed,
      profile,
      steps: stepsOverride || null,
      xmlRoot: sim.xmlRoot,
      clients,
      // true when every order made of the local updates alone (any order,
      // duplicates, merged chunks, batches) ended in the same encoded state
      stateOrderInvariant: invariant,
      stateVariants: variants,
      peersDiverged: diverged,
      updates: updates.map(u => ({ kind: u.kind, peer: u.peer, blob: blob(u.bytes) })),
      orders: outOrders,
      peers: peerStates,
      blobs
    }
  }
}

const parseSeeds = (s) => {
  const out = []
  for (const part of s.split(',')) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/)
    if (!m) throw new Error(`bad --seeds ${s}`)
    const lo = Number(m[1]); const hi = m[2] ? Number(m[2]) : lo
    for (let x = lo; x <= hi; x++) out.push(x)
  }
  return out
}

const main = () => {
  const args = process.argv.slice(2)
  const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def }
  const out = opt('--out')
  const seeds = parseSeeds(opt('--seeds', '1'))
  const fixedProfile = opt('--profile')
  const steps = opt('--steps') ? Number(opt('--steps')) : undefined
  if (!out) { console.error('usage: node crdt/oracle/gen.mjs --out DIR --seeds 1-30 [--profile NAME] [--steps N]'); process.exit(2) }
  if (fixedProfile && !PROFILES.includes(fixedProfile)) { console.error(`unknown profile ${fixedProfile}; one of ${PROFILES.join(' ')}`); process.exit(2) }
  mkdirSync(out, { recursive: true })
  let failed = false
  for (const seed of seeds) {
    const profile = fixedProfile || PROFILES[seed % PROFILES.length]
    const { problems, notes, invariant, rec } = generate(seed, profile, steps)
    const file = join(out, `${profile}-${String(seed).padStart(4, '0')}.json`)
    const text = JSON.stringify(rec)
    writeFileSync(file, text + '\n')
    console.log(`${file}: ${rec.updates.length} updates, ${rec.orders.length} orders, ${(text.length / 1024).toFixed(1)} KB, state order-invariant: ${invariant}`)
    for (const n of notes) console.log(`  note: ${n}`)
    for (const p of problems) { console.error(`  PROBLEM seed ${seed}: ${p}`); failed = true }
  }
  if (failed) process.exit(1)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main()
