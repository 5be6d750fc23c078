// Helpers shared by the e2e client scripts.

/** parseArgs reads --key value / --flag arguments; defaults give the keys and types. */
export const parseArgs = (argv, defaults) => {
  const out = { ...defaults, _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) { out._.push(a); continue }
    const key = a.slice(2)
    if (!(key in defaults)) fail(`unknown flag ${a}`)
    if (typeof defaults[key] === 'boolean') out[key] = true
    else out[key] = argv[++i] ?? fail(`flag ${a} needs a value`)
  }
  return out
}

/** emit prints one JSON line (stdout to a pipe is synchronous on Linux, so nothing is lost on exit). */
export const emit = (obj) => { process.stdout.write(JSON.stringify(obj) + '\n') }

/** fail reports an error event and exits 1. */
export const fail = (msg) => {
  emit({ ev: 'error', msg: String(msg) })
  process.stderr.write(String(msg) + '\n')
  process.exit(1)
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** svToJSON turns a decoded state vector (Map client -> clock) into a plain object. */
export const svToJSON = (sv) => Object.fromEntries([...sv.entries()].sort((a, b) => a[0] - b[0]))

/** svCovers reports whether state vector have includes every clock of want. */
export const svCovers = (have, want) => {
  for (const [client, clock] of want) {
    if ((have.get(client) ?? 0) < clock) return false
  }
  return true
}

/** mulberry32 is a small seeded PRNG returning floats in [0, 1). */
export const mulberry32 = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Characters of the basic multilingual plane only: a random position never
// splits a surrogate pair, so every client's text is valid UTF-16 and
// compares exactly with the server's UTF-8. Non-ASCII ones check that
// positions are counted in UTF-16 units on both sides.
const alphabet = 'abcdefghijklmnopqrstuvwxyz     \néßü中文'

/** randomEdit makes one seeded random edit of ytext (insert 1-4 chars, or delete 1-3), one transaction. */
export const randomEdit = (ydoc, ytext, rand) => {
  const len = ytext.length
  if (len > 0 && rand() < 0.25) {
    const pos = Math.floor(rand() * len)
    const n = Math.min(len - pos, 1 + Math.floor(rand() * 3))
    ydoc.transact(() => ytext.delete(pos, n))
    return
  }
  const pos = Math.floor(rand() * (len + 1))
  let s = ''
  const n = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)]
  ydoc.transact(() => ytext.insert(pos, s))
}
