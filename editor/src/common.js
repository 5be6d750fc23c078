// Shared helpers for the Quire pages: the access token, API calls, the person's name and color.

/** The token the page was opened with (?token=...), or null when auth is off. */
export const token = new URLSearchParams(window.location.search).get('token')

/**
 * tokenClaims decodes the token's payload, without verifying it (the server does that), only so
 * the page can say up front what the token allows, e.g. open read-only instead of letting a
 * person type text the server will refuse.
 * @returns {Record<string, any>|null}
 */
export const tokenClaims = () => {
  if (!token) return null
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const bin = atob(part + '='.repeat((4 - (part.length % 4)) % 4))
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))))
  } catch {
    return null
  }
}

/**
 * withToken appends the page's token to a same-site link, so that moving from the list to a
 * document keeps the access the person was given.
 * @param {string} path
 */
export const withToken = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path

/**
 * api calls the HTTP API with the page's token as a bearer credential and returns parsed JSON.
 * Errors carry the HTTP status so callers can tell "not found" from "server down".
 * @param {string} path
 * @param {RequestInit} [init]
 */
export const api = async (path, init = {}) => {
  const headers = new Headers(init.headers || {})
  headers.set('Accept', 'application/json')
  if (token) headers.set('Authorization', `Bearer ${token}`)
  const res = await fetch(path, { ...init, headers })
  if (!res.ok) {
    // The server's own words (JSON {error|message} or text) say more than the status line.
    let reason = ''
    try {
      const body = await res.text()
      try {
        const j = JSON.parse(body)
        reason = String(j.error || j.message || j.reason || '')
      } catch {
        reason = body.trim().slice(0, 200)
      }
    } catch {}
    const err = new Error(reason || `${init.method || 'GET'} ${path}: ${res.status} ${res.statusText}`)
    // @ts-ignore
    err.status = res.status
    throw err
  }
  const type = res.headers.get('Content-Type') || ''
  return type.includes('json') ? res.json() : res.text()
}

const NAME_KEY = 'quire.name'
const COLOR_KEY = 'quire.color'

// Colors that stay readable as a caret label with white text and as a 20% selection tint.
const PALETTE = [
  '#d1495b', '#e07a1f', '#2a9d8f', '#3a7bd5', '#8e44ad',
  '#c2185b', '#00897b', '#5c6bc0', '#6d8b23', '#b5651d'
]

/** The name this browser uses, or null when the person has not given one yet. */
export const storedName = () => {
  try {
    const n = window.localStorage.getItem(NAME_KEY)
    return n && n.trim() ? n.trim() : null
  } catch {
    return null
  }
}

/** @param {string} name */
export const storeName = (name) => {
  try {
    window.localStorage.setItem(NAME_KEY, name)
  } catch {
    // private mode: the name lives for this page only
  }
}

/** The color this browser uses; picked once at random and kept, so a person keeps their color. */
export const myColor = () => {
  try {
    const c = window.localStorage.getItem(COLOR_KEY)
    if (c && /^#[0-9a-f]{6}$/i.test(c)) return c
  } catch {}
  const c = PALETTE[Math.floor(Math.random() * PALETTE.length)]
  try {
    window.localStorage.setItem(COLOR_KEY, c)
  } catch {}
  return c
}

/**
 * lighten mixes a #rrggbb color with white; used for selection backgrounds of remote peers.
 * @param {string} hex
 * @param {number} amount 0..1 of white
 */
export const lighten = (hex, amount) => {
  const n = parseInt(hex.slice(1), 16)
  const mix = (c) => Math.round(c + (255 - c) * amount)
  const r = mix((n >> 16) & 255)
  const g = mix((n >> 8) & 255)
  const b = mix(n & 255)
  return '#' + ((1 << 24) | (r << 16) | (g << 8) | b).toString(16).slice(1)
}

/**
 * relativeTime says "just now", "5 min ago", ... for a date; the list page uses it for "last change".
 * @param {Date} d
 * @param {Date} [now]
 */
export const relativeTime = (d, now = new Date()) => {
  const s = Math.round((now.getTime() - d.getTime()) / 1000)
  if (!Number.isFinite(s)) return ''
  if (s < 45) return 'just now'
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.round(m / 60)
  if (h < 24) return `${h} h ago`
  const days = Math.round(h / 24)
  if (days < 7) return `${days} d ago`
  return d.toLocaleDateString()
}

/**
 * el creates an element with attributes and children; enough DOM helper for two small pages.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {Array<Node|string|null|undefined>} [children]
 */
export const el = (tag, attrs = {}, children = []) => {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v)
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v)
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children) {
    if (c == null) continue
    e.append(typeof c === 'string' ? document.createTextNode(c) : c)
  }
  return e
}
