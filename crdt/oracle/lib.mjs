// Shared helpers of the Yjs oracle scripts: a seeded PRNG (the recordings must be
// reproducible, so nothing here may use Math.random), base64, and the replay of a
// recorded order into a fresh Yjs document exactly as the Go test replays it.
import * as Y from 'yjs'

// splitmix32 turns any 32-bit seed into well-mixed words; it seeds sfc32 below.
const splitmix32 = (a) => () => {
  a = (a + 0x9e3779b9) | 0
  let t = a ^ (a >>> 16)
  t = Math.imul(t, 0x21f0aaad)
  t ^= t >>> 15
  t = Math.imul(t, 0x735a2d97)
  return (t ^ (t >>> 15)) >>> 0
}

// Rng is sfc32: small, fast and good enough for test generation; the same seed
// gives the same stream on every machine and Node version.
export class Rng {
  constructor (seed) {
    const sm = splitmix32(seed >>> 0)
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm()
    for (let i = 0; i < 12; i++) this.u32()
  }

  u32 () {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  // float in [0, 1)
  next () { return this.u32() / 4294967296 }
  // int in [0, n)
  int (n) { return n <= 0 ? 0 : Math.floor(this.next() * n) }
  // int in [lo, hi]
  range (lo, hi) { return lo + this.int(hi - lo + 1) }
  chance (p) { return this.next() < p }
  pick (arr) { return arr[this.int(arr.length)] }
  // 53-bit unsigned integer (the largest Yjs client id range)
  u53 () { return (this.u32() & 0x1fffff) * 4294967296 + this.u32() }
  shuffle (arr) {
    const a = arr.slice()
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = a[i]; a[i] = a[j]; a[j] = t
    }
    return a
  }

  // weighted pick: table is [[weight, value], ...]
  weighted (table) {
    let total = 0
    for (const [w] of table) total += w
    let r = this.next() * total
    for (const [w, v] of table) {
      if ((r -= w) < 0) return v
    }
    return table[table.length - 1][1]
  }
}

export const b64 = (u8) => Buffer.from(u8).toString('base64')
export const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

// textOf renders root `name` as Y.Text.toString would, but without doc.getText:
// getText would turn the untyped root into a Y.Text, and a Y.Text root runs the
// formatting cleanup on remote transactions while an untyped root (what a server
// that never asked for the type holds) does not. The replay must stay untyped.
export const textOf = (doc, name) => {
  const t = doc.share.get(name)
  if (!t) return ''
  let s = ''
  for (let n = t._start; n !== null; n = n.right) {
    if (!n.deleted && n.countable && n.content.constructor === Y.ContentString) s += n.content.str
  }
  return s
}

export const hasPending = (doc) => doc.store.pendingStructs !== null || doc.store.pendingDs !== null

// REPLAY_CLIENT is the replay doc's own client id. It never creates structs (the
// only local transactions a replay can run are formatting cleanups, which only
// delete), but it is fixed so that the replay is deterministic; the Go test uses
// crdt.Options{} whose ClientID is 0 too.
export const REPLAY_CLIENT = 0

// snapshotOf is what a checkpoint records.
export const snapshotOf = (doc) => ({
  text: textOf(doc, 'content'),
  stateVector: Y.encodeStateVector(doc),
  state: Y.encodeStateAsUpdate(doc),
  pending: hasPending(doc)
})

// idealOf is what a doc holds once it has all of `updates`, computed the way
// that does not depend on Yjs's pending-struct retries: one merged update into
// a fresh doc.
export const idealOf = (updates) => {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = REPLAY_CLIENT
  Y.applyUpdate(doc, Y.mergeUpdates(updates), 'remote')
  const res = { text: textOf(doc, 'content'), stateVector: Y.encodeStateVector(doc) }
  doc.destroy()
  return res
}

// replay applies steps (arrays of update indices) into a fresh gc:true doc.
// A step of one update outside a batched order is Y.applyUpdate; a step of a
// batched order is one Y.transact(remote, local=false) applying each update.
// It returns, per step, the updates the doc emitted (doc.on('update')), and the
// snapshots after the steps listed in `checkpoints` (step counts).
//
// stuckFrom is the first step after which Yjs holds less than it could: Yjs
// 13.6 can leave structs pending forever although every dependency has arrived
// (its retry only fires when an update fills a recorded `missing` clock, and
// the clocks a struct waits for are not always recorded). From there on the
// replay shows a Yjs bug, not behaviour to copy; ideal is then what the doc
// should hold at the end.
export const replay = (updates, steps, batched, checkpoints) => {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = REPLAY_CLIENT
  let emittedNow = []
  doc.on('update', (u) => { emittedNow.push(u) })
  const emitted = []
  const snaps = new Map()
  const want = new Set(checkpoints)
  const delivered = []
  let stuckFrom = null
  if (want.has(0)) snaps.set(0, snapshotOf(doc))
  steps.forEach((step, i) => {
    emittedNow = []
    if (batched) {
      Y.transact(doc, () => { for (const k of step) Y.applyUpdate(doc, updates[k], 'remote') }, 'remote', false)
    } else {
      for (const k of step) Y.applyUpdate(doc, updates[k], 'remote')
    }
    for (const k of step) delivered.push(updates[k])
    emitted.push(emittedNow)
    if (want.has(i + 1)) snaps.set(i + 1, snapshotOf(doc))
    if (stuckFrom === null && hasPending(doc)) {
      const ideal = idealOf(delivered)
      if (ideal.text !== textOf(doc, 'content') || !bytesEqual(ideal.stateVector, Y.encodeStateVector(doc))) stuckFrom = i + 1
    }
  })
  const ideal = stuckFrom === null ? null : idealOf(delivered)
  doc.destroy()
  return { emitted, snaps, stuckFrom, ideal }
}

export const bytesEqual = (a, b) => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
