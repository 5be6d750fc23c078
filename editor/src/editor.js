// The editor page /d/{docID}: CodeMirror 6 bound to the root Y.Text "content", synced through the
// stock y-websocket provider and kept in the browser by y-indexeddb.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { IndexeddbPersistence } from 'y-indexeddb'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { basicSetup } from 'codemirror'
import { EditorView, keymap } from '@codemirror/view'
import { EditorState, Compartment, Prec } from '@codemirror/state'
import { SyncStatus } from './status.js'
import { api, token, tokenClaims, withToken, storedName, storeName, myColor, lighten, el } from './common.js'

const docID = decodeURIComponent(window.location.pathname.replace(/^\/d\//, ''))
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id))

const ydoc = new Y.Doc()
const ytext = ydoc.getText('content')
const persistence = new IndexeddbPersistence(docID, ydoc)
const wsBase = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/ws`
const provider = new WebsocketProvider(wsBase, docID, ydoc, {
  connect: false, // connect once the local copy is loaded, so our first step 1 already includes it
  params: token ? { token } : {}
})
const awareness = provider.awareness

// --- presence ---------------------------------------------------------------------------------

const color = myColor()
const setUser = (name) => awareness.setLocalStateField('user', { name, color, colorLight: lighten(color, 0.75) })
setUser(storedName() || 'Anonymous')

const renderPeople = () => {
  const box = $('people')
  box.replaceChildren()
  const states = [...awareness.getStates().entries()]
    .filter(([, s]) => s && s.user)
    // me first, then by name, so the bar does not jump around
    .sort(([a, sa], [b, sb]) => (b === ydoc.clientID) - (a === ydoc.clientID) || String(sa.user.name).localeCompare(String(sb.user.name)))
  for (const [id, s] of states) {
    const me = id === ydoc.clientID
    // a peer's state is whatever it sent: keep its name short and its color a color
    const name = String(s.user.name).slice(0, 40)
    const dot = /^#[0-9a-f]{3,8}$/i.test(String(s.user.color)) ? s.user.color : '#888'
    const chip = el(me ? 'button' : 'span', {
      class: 'person' + (me ? ' me' : ''),
      'data-client': String(id),
      title: me ? 'You (click to change your name)' : `${name} is here`,
      type: me ? 'button' : null,
      onclick: me ? () => askName(true) : null
    }, [
      el('span', { class: 'dot', style: { background: dot } }),
      el('span', { class: 'pname' }, [name + (me ? ' (you)' : '')])
    ])
    box.append(chip)
  }
  $('people-count').textContent = states.length === 1 ? 'only you' : `${states.length} here`
}
// Remote carets put the peer's color into a style attribute (y-codemirror.next): a peer that sends
// "red; position: fixed; ..." could restyle our page. Clean the states before anything draws them
// (this listener is registered before the editor's).
const sanitize = ({ added, updated }) => {
  for (const id of [...added, ...updated]) {
    const s = awareness.getStates().get(id)
    if (id === ydoc.clientID || !s || typeof s.user !== 'object' || s.user === null) continue
    for (const k of ['color', 'colorLight']) {
      if (k in s.user && !/^#[0-9a-f]{3,8}$/i.test(String(s.user[k]))) s.user[k] = '#888888'
    }
    if (typeof s.user.name !== 'string') s.user.name = 'Anonymous'
    else if (s.user.name.length > 40) s.user.name = s.user.name.slice(0, 40)
  }
}
awareness.on('change', (changes) => {
  sanitize(changes)
  renderPeople()
})

// askName shows the small inline dialog (not window.prompt, which blocks the page).
const askName = (changing) => {
  const dlg = $('name-dialog')
  const input = /** @type {HTMLInputElement} */ ($('name-input'))
  input.value = changing ? (storedName() || '') : ''
  dlg.hidden = false
  input.focus()
}
$('name-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const name = /** @type {HTMLInputElement} */ ($('name-input')).value.trim().slice(0, 40)
  if (!name) return
  storeName(name)
  setUser(name)
  $('name-dialog').hidden = true
  view.focus()
})
$('name-skip').addEventListener('click', () => {
  $('name-dialog').hidden = true
  view.focus()
})

// --- editor -----------------------------------------------------------------------------------

const readOnly = new Compartment()
const view = new EditorView({
  parent: $('editor'),
  state: EditorState.create({
    doc: ytext.toString(),
    extensions: [
      // Undo must be Yjs's (it undoes only this person's changes): basicSetup's CodeMirror history
      // also records the changes of others, and its Mod-z would undo someone else's typing. So
      // yCollab's handlers and the Yjs undo keys take precedence over basicSetup's.
      Prec.highest(keymap.of(yUndoManagerKeymap)),
      Prec.high(yCollab(ytext, awareness)),
      basicSetup,
      EditorView.lineWrapping,
      readOnly.of(EditorState.readOnly.of(false)),
      EditorView.contentAttributes.of({ 'aria-label': 'Document text' })
    ]
  })
})

// --- status -----------------------------------------------------------------------------------

let wasReadOnly = false
const status = new SyncStatus(provider, ydoc, {
  key: `quire.unsent.${docID}`,
  remoteOrigins: new Set([provider, persistence]),
  onChange: (s) => {
    const box = $('status')
    box.dataset.state = s.state
    box.dataset.pending = String(s.pending)
    $('status-text').textContent = s.label
    const why = s.deniedReason || s.readOnlyReason
    box.title = why && !s.label.includes(why) ? `${s.label} (${why})` : s.label
    // Refused or read-only: typing would only make text the server will never take.
    const ro = s.readOnly || s.denied
    if (ro !== wasReadOnly) {
      wasReadOnly = ro
      view.dispatch({ effects: readOnly.reconfigure(EditorState.readOnly.of(ro)) })
    }
  }
})

// A read-only token: open read-only at once rather than let a person type what will be refused.
const claims = tokenClaims()
if (claims && claims.access === 'read-only') status.setReadOnly('your link gives read-only access')

// The browser knows before the socket does: when it says offline, stop trying (and say so);
// when it is back, connect at once instead of waiting for the provider's backoff.
window.addEventListener('offline', () => provider.disconnect())
window.addEventListener('online', () => { if (navigator.onLine !== false && !status.denied) provider.connect() })

let connectedOnce = false
const connect = () => {
  if (connectedOnce) return
  connectedOnce = true
  if (navigator.onLine !== false && !status.denied) provider.connect()
  status.start()
}
persistence.whenSynced.then(connect)
// IndexedDB can be unavailable (some private modes): do not wait for it forever.
setTimeout(connect, 2000)

// --- header: title, copy link --------------------------------------------------------------------

$('doc-title').textContent = docID
document.title = `${docID} · Quire`
$('home-link').setAttribute('href', withToken('/'))
api(`/api/docs/${encodeURIComponent(docID)}`).then((meta) => {
  const name = meta && (meta.name || meta.Name)
  if (name) {
    $('doc-title').textContent = name
    document.title = `${name} · Quire`
  }
}).catch((err) => {
  // 401/403: the server refuses this page (no token, expired, another document); the socket is
  // refused before the upgrade, where the browser cannot see why, so say it here.
  if (err.status === 401 || err.status === 403) status.deny(err.message)
  // 404: a document made by a client without the API has no metadata: keep the id.
})

$('copy-link').addEventListener('click', async () => {
  // The link without the token: a token is the sender's own access and should not be forwarded.
  const url = `${window.location.origin}/d/${encodeURIComponent(docID)}`
  let ok = false
  try {
    await navigator.clipboard.writeText(url)
    ok = true
  } catch {
    // clipboard API refused (insecure origin): show the link to copy by hand
    window.getSelection()?.removeAllRanges()
  }
  const btn = $('copy-link')
  btn.dataset.copied = ok ? 'yes' : 'no'
  btn.textContent = ok ? 'Copied' : url
  setTimeout(() => { btn.textContent = 'Copy link'; delete btn.dataset.copied }, ok ? 1500 : 8000)
})

if (!storedName()) askName(false)
renderPeople()

// Keep the page itself available offline (the document is in IndexedDB). Browsers allow service
// workers on https and on localhost only; elsewhere the editor still works, just not reloads offline.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/assets/sw.js', { scope: '/' }).catch((err) => {
    console.warn('quire: no offline page cache:', err.message)
  })
}

// For tests and for curious people in the console.
// @ts-ignore
window.quire = { ydoc, ytext, provider, persistence, awareness, view, status, docID }
