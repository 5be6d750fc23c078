// The documents page /: every document with its last change and who is in it now.
import { api, withToken, relativeTime, el } from './common.js'

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id))

// The server's JSON field names are read leniently so the page keeps working as the API grows.
const pick = (o, ...keys) => {
  for (const k of keys) if (o[k] != null) return o[k]
  return undefined
}

// people returns who is in a document now: names when the server gives them (an array of
// {name, color} under "editors"), else a bare count ("peers": connections open now).
const people = (d) => {
  for (const k of ['editors', 'people', 'users', 'present', 'peers']) {
    const p = d[k]
    if (Array.isArray(p)) {
      const list = p.map((x) => typeof x === 'string' ? { name: x } : (x && (x.user || x)) || {})
      const n = pick(d, 'peers', 'peer_count')
      return { count: typeof n === 'number' ? Math.max(n, list.length) : list.length, list }
    }
  }
  const n = pick(d, 'peers', 'peer_count', 'peerCount', 'connections', 'clients')
  return { count: typeof n === 'number' ? n : 0, list: null }
}

const render = (docs) => {
  const list = $('docs')
  list.replaceChildren()
  $('empty').hidden = docs.length > 0
  const now = new Date()
  for (const d of docs) {
    const id = String(pick(d, 'id', 'ID'))
    const name = pick(d, 'name', 'Name') || id
    const updated = pick(d, 'updated_at', 'updatedAt', 'UpdatedAt', 'last_change')
    const when = updated ? new Date(updated) : null
    const { count, list: who } = people(d)
    const whoBox = el('span', { class: 'who', 'data-count': String(count) })
    if (who && who.length) {
      for (const w of who) {
        whoBox.append(el('span', { class: 'person' }, [
          el('span', { class: 'dot', style: { background: /^#[0-9a-f]{3,8}$/i.test(String(w.color)) ? w.color : '#888' } }),
          el('span', { class: 'pname' }, [String(w.name || 'Anonymous').slice(0, 40)])
        ]))
      }
    } else if (count > 0) {
      whoBox.append(el('span', { class: 'person' }, [count === 1 ? '1 person editing' : `${count} people editing`]))
    } else {
      whoBox.append(el('span', { class: 'nobody' }, ['nobody here']))
    }
    list.append(el('li', { class: 'doc', 'data-id': id }, [
      el('a', { href: withToken(`/d/${encodeURIComponent(id)}`), class: 'doc-link' }, [
        el('span', { class: 'doc-name' }, [String(name)]),
        name !== id ? el('span', { class: 'doc-id' }, [id]) : null
      ]),
      el('span', { class: 'doc-meta' }, [
        when ? el('time', { datetime: when.toISOString(), title: when.toLocaleString() }, [relativeTime(when, now)]) : null,
        whoBox
      ])
    ]))
  }
}

const load = async () => {
  try {
    const res = await api('/api/docs')
    const docs = Array.isArray(res) ? res : (res && (res.docs || res.documents)) || []
    render(docs)
    $('error').hidden = true
  } catch (err) {
    $('error').textContent = err.status === 401
      ? `This server needs an access token (${err.message}). Open the link you were given: it ends in ?token=…`
      : err.status === 403
        ? `Your access token does not allow listing the documents (${err.message}).`
        : `Could not load the documents: ${err.message}`
    $('error').hidden = false
  }
  document.body.dataset.loaded = 'yes'
}

$('new-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const btn = /** @type {HTMLButtonElement} */ ($('new-doc'))
  btn.disabled = true
  try {
    const name = /** @type {HTMLInputElement} */ ($('new-name')).value.trim()
    const d = await api('/api/docs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(name ? { name } : {}) })
    window.location.href = withToken(`/d/${encodeURIComponent(String(pick(d, 'id', 'ID')))}`)
  } catch (err) {
    $('error').textContent = `Could not create a document: ${err.message}`
    $('error').hidden = false
    btn.disabled = false
  }
})

load()
// Who is in a document changes all the time: refresh while the page is visible.
setInterval(() => { if (document.visibilityState === 'visible') load() }, 5000)
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') load() })

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/assets/sw.js', { scope: '/' }).catch(() => {})
}
