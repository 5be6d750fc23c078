// bench.mjs: the crdt benchmarks, in Yjs on Node, for scripts/bench-compare.sh.
//
//   node --expose-gc crdt/oracle/bench.mjs [--filter REGEX] [--runs N] [--warmup N] [--json]
//
// Rows, named as the Go benchmarks (Benchmark<Family>/<name>):
//   Replay/<trace>         each ../shared/traces/sequential/*.json.gz replayed as local
//                          edits to a Y.Text, one transaction per txn; final text checked
//   ReplayUpdates/<trace>  the same, also capturing the update each transaction emits
//                          (doc.on('update')), as an editor sends it
//   Load/<doc>             Y.applyUpdate of ../shared/traces/yjs/<doc>.v1.yjs into a new
//                          doc and toString of its root text `text`; text checked
// Each row: warm-up runs, then timed runs; the median is reported. heap is
// process.memoryUsage().heapUsed after a forced gc with the run's document still
// alive, minus the same before the run: what the document retains (median over
// the timed runs; null without --expose-gc). With --json, one JSON object per row on stdout.
import * as Y from 'yjs'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const traces = process.env.QUIRE_TRACES || resolve(root, '../shared/traces')

const args = process.argv.slice(2)
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def }
const filter = new RegExp(opt('--filter', '.'))
const runs = Number(opt('--runs', 5))
const warmup = Number(opt('--warmup', 2))
const asJSON = args.includes('--json')

// compare prints the side-by-side table of scripts/bench-compare.sh from the
// output of `go test -bench -benchmem` and of this script's --json mode.
const compare = (goFile, nodeFile) => {
  const median = (xs) => { const a = xs.slice().sort((x, y) => x - y); const n = a.length; return n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2 }
  const goRows = new Map()
  for (const line of readFileSync(goFile, 'utf8').split('\n')) {
    const m = line.match(/^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$/)
    if (!m) continue
    const r = goRows.get(m[1]) || { ns: [], bytes: [], allocs: [], retained: [] }
    const metrics = m[2].trim().split(/\s+/)
    for (let i = 0; i + 1 < metrics.length; i += 2) {
      const v = Number(metrics[i]); const unit = metrics[i + 1]
      if (unit === 'ns/op') r.ns.push(v)
      else if (unit === 'B/op') r.bytes.push(v)
      else if (unit === 'allocs/op') r.allocs.push(v)
      else if (/retained|heap|live/.test(unit)) r.retained.push(v) // a custom b.ReportMetric, in bytes
    }
    goRows.set(m[1], r)
  }
  const jsRows = new Map()
  for (const line of readFileSync(nodeFile, 'utf8').split('\n')) {
    if (line.startsWith('{')) { const r = JSON.parse(line); jsRows.set(r.name, r) }
  }
  const names = [...new Set([...goRows.keys(), ...jsRows.keys()])]
  const fam = (n) => ['Replay/', 'ReplayUpdates/', 'Load/'].findIndex(p => n.startsWith(p))
  names.sort((a, b) => fam(a) - fam(b) || a.localeCompare(b))
  const ms = (ns) => ns === undefined ? '-' : (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)
  const mib = (b) => b === undefined || b === null ? '-' : (b / 1048576).toFixed(1)
  const withRetained = [...goRows.values()].some(r => r.retained.length > 0)
  const header = ['row', 'Go ms/op', 'Yjs ms/op', 'Go/Yjs', 'Go MiB/op', 'Go allocs/op', ...(withRetained ? ['Go retained MiB'] : []), 'Yjs heap MiB']
  const rows = names.map(n => {
    const g = goRows.get(n); const j = jsRows.get(n)
    const gns = g && g.ns.length ? median(g.ns) : undefined
    const jns = j ? j.medianNs : undefined
    return [n, ms(gns), ms(jns), gns !== undefined && jns ? (gns / jns).toFixed(3) : '-',
      mib(g && g.bytes.length ? median(g.bytes) : undefined), g && g.allocs.length ? String(median(g.allocs)) : '-',
      ...(withRetained ? [mib(g && g.retained.length ? median(g.retained) : undefined)] : []), mib(j ? j.heapBytes : undefined)]
  })
  const w = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const fmt = (r) => '| ' + r.map((c, i) => i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])).join(' | ') + ' |'
  console.log(fmt(header))
  console.log('|' + w.map((x, i) => (i === 0 ? ':' : '') + '-'.repeat(x + 1) + (i === 0 ? '' : ':')).join('|') + '|')
  for (const r of rows) console.log(fmt(r))
  console.log('\nGo: median of the -count runs; Go MiB/op is what one op allocates (B/op). Yjs: median of the timed runs;')
  console.log('Yjs heap is what the finished document retains (heapUsed after a forced gc). Go/Yjs < 1: Go is faster.')
}

if (args[0] === '--compare') {
  compare(args[1], args[2])
  process.exit(0)
}

if (!existsSync(traces)) {
  console.error(`bench.mjs: no traces at ${traces} (set QUIRE_TRACES)`)
  process.exit(1)
}

const isAstral = (cp) => cp > 0xffff

// toUTF16 converts a trace whose positions count code points into UTF-16
// positions and lengths, as Yjs counts. It tracks where the astral characters
// are (few), so the conversion is cheap; it runs before any timing.
const toUTF16 = (trace) => {
  let astral = [] // sorted code-point positions of astral characters in the doc
  const before = (pos) => { let lo = 0; let hi = astral.length; while (lo < hi) { const m = (lo + hi) >> 1; if (astral[m] < pos) lo = m + 1; else hi = m } return lo }
  let converted = 0
  const txns = trace.txns.map(txn => ({
    patches: txn.patches.map(([pos, del, ins]) => {
      const u16pos = pos + before(pos)
      let u16del = del
      if (del > 0) {
        const inRange = before(pos + del) - before(pos)
        u16del += inRange
        astral = astral.filter(a => a < pos || a >= pos + del).map(a => a >= pos + del ? a - del : a)
      }
      const cps = Array.from(ins)
      if (cps.length > 0) {
        astral = astral.map(a => a >= pos ? a + cps.length : a)
        cps.forEach((c, i) => { if (isAstral(c.codePointAt(0))) astral.push(pos + i) })
        astral.sort((a, b) => a - b)
      }
      if (u16pos !== pos || u16del !== del) converted++
      return [u16pos, u16del, ins]
    })
  }))
  return { ...trace, txns, converted }
}

const loadTrace = (file) => {
  const t = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8'))
  return file.includes('.unicode.') ? toUTF16(t) : t
}

const replay = (trace, captureUpdates) => {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  let updates = 0
  let updateBytes = 0
  if (captureUpdates) doc.on('update', (u) => { updates++; updateBytes += u.length })
  if (trace.startContent) text.insert(0, trace.startContent)
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del > 0) text.delete(pos, del)
        if (ins !== '') text.insert(pos, ins)
      }
    })
  }
  return { doc, text: text.toString(), updates, updateBytes }
}

const load = (bytes) => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  return { doc, text: doc.getText('text').toString() }
}

const heapNow = () => { global.gc(); global.gc(); return process.memoryUsage().heapUsed }

// measure runs fn warmup+runs times; fn returns {doc, text}; check validates one result.
const measure = (name, fn, check) => {
  const times = []
  const heaps = []
  for (let i = 0; i < warmup + runs; i++) {
    const h0 = global.gc ? heapNow() : 0
    const t0 = process.hrtime.bigint()
    let res = fn()
    const ns = Number(process.hrtime.bigint() - t0)
    if (i === 0) check(res)
    if (global.gc && i >= warmup) heaps.push(heapNow() - h0)
    res.doc.destroy()
    res = null
    if (i >= warmup) times.push(ns)
  }
  const med = (xs) => { const a = xs.slice().sort((x, y) => x - y); const n = a.length; return n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2 }
  const median = med(times)
  const heap = heaps.length ? med(heaps) : null
  const row = { name, medianNs: median, runsNs: times, heapBytes: heap }
  if (asJSON) console.log(JSON.stringify(row))
  else console.log(`${name.padEnd(44)} ${(median / 1e6).toFixed(1).padStart(10)} ms/op  heap ${heap === null ? '-' : (heap / 1048576).toFixed(1) + ' MiB'}`)
  return row
}

const seqDir = join(traces, 'sequential')
for (const f of readdirSync(seqDir).filter(f => f.endsWith('.json.gz')).sort()) {
  const name = f.replace(/\.json\.gz$/, '')
  const wantReplay = filter.test(`Replay/${name}`)
  const wantUpdates = filter.test(`ReplayUpdates/${name}`)
  if (!wantReplay && !wantUpdates) continue
  const trace = loadTrace(join(seqDir, f))
  const check = (res) => {
    if (res.text !== trace.endContent) throw new Error(`${name}: replayed text differs from endContent`)
  }
  if (wantReplay) measure(`Replay/${name}`, () => replay(trace, false), check)
  if (wantUpdates) {
    measure(`ReplayUpdates/${name}`, () => replay(trace, true), (res) => {
      check(res)
      if (res.updates !== trace.txns.length) throw new Error(`${name}: ${res.updates} updates for ${trace.txns.length} transactions`)
    })
  }
}

const yjsDir = join(traces, 'yjs')
for (const f of readdirSync(yjsDir).filter(f => f.endsWith('.v1.yjs')).sort()) {
  const name = f.replace(/\.v1\.yjs$/, '')
  if (!filter.test(`Load/${name}`)) continue
  const bytes = new Uint8Array(readFileSync(join(yjsDir, f)))
  const want = readFileSync(join(yjsDir, `${name}.txt`), 'utf8')
  measure(`Load/${name}`, () => load(bytes), (res) => {
    if (res.text !== want) throw new Error(`${name}: loaded text differs from ${name}.txt`)
  })
}
