// Service worker: keeps the pages and the bundle available without a network, so a document can
// be reopened (or the page reloaded) while offline; y-indexeddb holds the document itself.
//
// Pages are network-first (a reachable server always gives the current version), assets are
// cache-first (their URLs carry a content hash). The API and the WebSocket are never touched.
/* eslint-env serviceworker */

const CACHE = 'quire-shell-v1'
const LIST = '/' // the cached document list
const DOC = '/d/' // the cached editor page, whatever the document id (the page reads it from the URL)

// The page shells are cached under these keys; assets under their own versioned URLs.
const shellKey = (url) => (url.pathname === '/' ? LIST : url.pathname.startsWith('/d/') ? DOC : null)

// assetURLs lists the /assets/...?v=... URLs an HTML page loads.
const assetURLs = (html) => [...html.matchAll(/\/assets\/[A-Za-z0-9._-]+\?v=[0-9a-f]+/g)].map((m) => m[0])

// store caches a page shell and every asset it references, then drops assets no shell uses.
const store = async (key, response) => {
  const cache = await caches.open(CACHE)
  const html = await response.clone().text()
  await cache.put(key, response)
  await Promise.all(assetURLs(html).map(async (u) => {
    if (!(await cache.match(u))) {
      const r = await fetch(u)
      if (r.ok) await cache.put(u, r)
    }
  }))
  // prune old asset versions
  const keep = new Set()
  for (const k of [LIST, DOC]) {
    const r = await cache.match(k)
    if (r) for (const u of assetURLs(await r.text())) keep.add(new URL(u, self.location.origin).href)
  }
  for (const req of await cache.keys()) {
    const u = new URL(req.url)
    if (u.pathname.startsWith('/assets/') && !keep.has(u.href)) await cache.delete(req)
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    // "_" is a valid document id: any /d/{id} answers the same editor page.
    for (const [key, url] of [[LIST, '/'], [DOC, '/d/_']]) {
      const r = await fetch(url, { cache: 'no-cache' })
      if (r.ok) await store(key, r)
    }
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name)
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const req = event.request
  if (req.method !== 'GET') return
  const url = new URL(req.url)
  if (url.origin !== self.location.origin) return
  if (req.mode === 'navigate') {
    const key = shellKey(url)
    if (!key) return
    event.respondWith((async () => {
      try {
        const r = await fetch(req)
        if (r.ok) event.waitUntil(store(key, r.clone()))
        return r
      } catch (err) {
        const cached = await caches.match(key)
        if (cached) return cached
        throw err
      }
    })())
    return
  }
  if (url.pathname.startsWith('/assets/') && url.searchParams.has('v')) {
    event.respondWith((async () => {
      const cached = await caches.match(req)
      if (cached) return cached
      const r = await fetch(req)
      if (r.ok) {
        const copy = r.clone()
        event.waitUntil(caches.open(CACHE).then((c) => c.put(req, copy)))
      }
      return r
    })())
  }
})
