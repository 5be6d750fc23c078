// Builds the editor bundle: editor/src -> editor/dist (committed, embedded by editor/embed.go).
//
//   node editor/build.mjs           rebuild editor/dist
//   node editor/build.mjs --check   rebuild into a temp dir; exit 1 if editor/dist differs
//
// The output is deterministic (no timestamps, no source maps, stable file names) so that the
// check can compare bytes. HTML files reference assets as /assets/NAME?v=HASH, where HASH is the
// start of the asset's SHA-256: the Go handler serves such a URL as immutable.
import * as esbuild from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const editorDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(editorDir)
const srcDir = join(editorDir, 'src')
const distDir = join(editorDir, 'dist')

// Pages: output name -> source HTML. /d/{docID} serves doc.html.
const pages = { 'index.html': 'index.html', 'doc.html': 'doc.html' }

/** hash is the asset version used in ?v=; the Go side computes the same from the embedded bytes. */
export const hash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 16)

/** build writes the whole dist tree into outDir (which must be empty or absent). */
const build = async (outDir) => {
  const assetsDir = join(outDir, 'assets')
  mkdirSync(assetsDir, { recursive: true })
  const result = await esbuild.build({
    absWorkingDir: rootDir,
    entryPoints: {
      editor: join(srcDir, 'editor.js'),
      list: join(srcDir, 'list.js'),
      style: join(srcDir, 'style.css')
    },
    outdir: assetsDir,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15.4'],
    sourcemap: false,
    legalComments: 'eof',
    banner: { js: '/* Quire editor. Third-party code in this file and its licenses: /assets/licenses.txt */', css: '/* Quire */' },
    charset: 'utf8',
    logLevel: 'warning',
    write: false,
    metafile: true
  })
  // The service worker is a classic script (module workers are not everywhere yet) at a stable URL.
  const sw = await esbuild.build({
    absWorkingDir: rootDir,
    entryPoints: { sw: join(srcDir, 'sw.js') },
    outdir: assetsDir,
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15.4'],
    sourcemap: false,
    charset: 'utf8',
    logLevel: 'warning',
    write: false
  })
  // The bundle carries code of these packages: ship their license texts beside it (MIT and
  // friends ask for the notice to travel with the code).
  writeFileSync(join(assetsDir, 'licenses.txt'), licenses(Object.keys(result.metafile.inputs)))
  const assets = new Map()
  for (const f of [...result.outputFiles, ...sw.outputFiles]) {
    const name = relative(assetsDir, f.path)
    writeFileSync(f.path, f.contents)
    assets.set(name, hash(f.contents))
  }
  for (const [out, src] of Object.entries(pages)) {
    const html = readFileSync(join(srcDir, src), 'utf8').replace(/\{\{asset:([^}]+)\}\}/g, (_, name) => {
      if (!assets.has(name)) throw new Error(`${src}: unknown asset ${name}`)
      return `/assets/${name}?v=${assets.get(name)}`
    })
    writeFileSync(join(outDir, out), html)
  }
}

/** licenses collects the license text of every npm package among the bundle's inputs. */
const licenses = (inputs) => {
  const pkgs = new Set()
  for (const p of inputs) {
    const m = p.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)
    if (m) pkgs.add(m[1])
  }
  let out = 'Quire editor bundle: third-party software it contains, with its license.\n'
  for (const name of [...pkgs].sort()) {
    const dir = join(rootDir, 'node_modules', name)
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const file = readdirSync(dir).filter((f) => /^(licen[cs]e|copying)/i.test(f)).sort()[0]
    out += `\n${'='.repeat(78)}\n${name} ${meta.version} (${meta.license || 'see below'})\n${'='.repeat(78)}\n`
    out += file ? readFileSync(join(dir, file), 'utf8').trim() + '\n' : `License: ${meta.license}\n`
  }
  return out
}

/** files lists every file under dir as relative paths, sorted. */
const files = (dir) => {
  const out = []
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.push(relative(dir, p))
    }
  }
  if (existsSync(dir)) walk(dir)
  return out.sort()
}

const check = process.argv.includes('--check')
const tmp = mkdtempSync(join(tmpdir(), 'quire-editor-'))
try {
  const outDir = join(tmp, 'dist')
  await build(outDir)
  if (check) {
    const want = files(outDir)
    const have = files(distDir)
    const problems = []
    for (const f of want) {
      if (!have.includes(f)) problems.push(`missing: editor/dist/${f}`)
      else if (!readFileSync(join(outDir, f)).equals(readFileSync(join(distDir, f)))) problems.push(`stale: editor/dist/${f}`)
    }
    for (const f of have) if (!want.includes(f)) problems.push(`extra: editor/dist/${f}`)
    if (problems.length) {
      console.error('editor/dist is not what editor/src builds; run `make editor` and commit editor/dist:')
      for (const p of problems) console.error('  ' + p)
      process.exit(1)
    }
    console.log(`editor/dist is up to date (${want.length} files)`)
  } else {
    rmSync(distDir, { recursive: true, force: true })
    mkdirSync(distDir, { recursive: true })
    for (const f of files(outDir)) {
      mkdirSync(dirname(join(distDir, f)), { recursive: true })
      writeFileSync(join(distDir, f), readFileSync(join(outDir, f)))
    }
    for (const f of files(distDir)) console.log(`editor/dist/${f}  ${statSync(join(distDir, f)).size} bytes`)
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
