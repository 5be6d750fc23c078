// Yjs as an oracle for the Go e2e tests: decode stored updates, make
// updates, and check that one state contains another.
//
//   node e2e/js/ytool.mjs decode FILE [--root content] [--xml-root NAME]
//       -> {"text", "sv", "bytes"} of the v1 update in FILE; with --xml-root
//          also "json", the roots meta, list and the XmlFragment NAME as
//          client.mjs --profile reports them
//   node e2e/js/ytool.mjs make-update --out FILE --text STR [--base FILE] [--pos N] [--root content]
//       -> writes the v1 update that inserts STR at N (default: the end) into
//          the state in --base (or an empty doc); prints {"text", "sv"} after it
//   node e2e/js/ytool.mjs covers SERVER_FILE CLIENT_FILE [--root content]
//       -> {"covered", "serverText", "serverSV", "clientText", "clientSV"}:
//          covered is true when merging the client's state into the server's
//          changes nothing (every struct and every deletion is there)
import * as Y from 'yjs'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs, emit, fail, svToJSON } from './lib.mjs'
import { docJSON } from '../../crdt/oracle/gen.mjs'

const [sub, ...rest] = process.argv.slice(2)
const args = parseArgs(rest, { root: 'content', 'xml-root': '', out: '', text: '', base: '', pos: '' })

const load = (file) => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, readFileSync(file))
  return doc
}
const svOf = (doc) => svToJSON(Y.decodeStateVector(Y.encodeStateVector(doc)))
const same = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0

try {
  switch (sub) {
    case 'decode': {
      const file = args._[0] ?? fail('decode FILE')
      const doc = load(file)
      const text = doc.getText(args.root).toString()
      const json = args['xml-root'] ? { json: docJSON(doc, args['xml-root']) } : {}
      emit({ text, sv: svOf(doc), bytes: readFileSync(file).length, ...json })
      break
    }
    case 'make-update': {
      if (!args.out) fail('--out is required')
      const doc = args.base ? load(args.base) : new Y.Doc()
      const before = Y.encodeStateVector(doc)
      const text = doc.getText(args.root)
      const pos = args.pos === '' ? text.length : Number(args.pos)
      text.insert(pos, args.text)
      writeFileSync(args.out, Y.encodeStateAsUpdate(doc, before))
      emit({ text: text.toString(), sv: svOf(doc) })
      break
    }
    case 'covers': {
      const [serverFile, clientFile] = args._
      if (!serverFile || !clientFile) fail('covers SERVER_FILE CLIENT_FILE')
      const server = load(serverFile)
      const client = load(clientFile)
      const before = Y.encodeStateAsUpdate(server)
      const serverText = server.getText(args.root).toString()
      const serverSV = svOf(server)
      Y.applyUpdate(server, Y.encodeStateAsUpdate(client))
      const covered = same(before, Y.encodeStateAsUpdate(server)) && serverText === server.getText(args.root).toString()
      emit({ covered, serverText, serverSV, clientText: client.getText(args.root).toString(), clientSV: svOf(client) })
      break
    }
    default:
      fail(`unknown subcommand ${sub}`)
  }
} catch (e) {
  fail(e?.stack ?? e)
}
