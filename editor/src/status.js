// SyncStatus tells, truthfully and at a glance, whether this page's edits have reached the server.
//
// y-websocket has no acknowledgements, so "sent" is derived from what the protocol does guarantee:
//  - an edit made while the socket is open is written to it at once; it counts as sent when the
//    socket's send buffer has drained (bufferedAmount === 0);
//  - an edit made while disconnected is NOT queued by the provider: it reaches the server only in
//    our sync step 2, which the provider writes in reply to the server's sync step 1 on the next
//    connection. So offline edits count as sent only after that reply has drained.
// If the connection drops while live edits may still be in flight, they become offline edits again
// (the next step 2 carries them anyway). The count is kept in localStorage, so a page reloaded while
// offline still says how many of its edits the server has not seen (y-indexeddb kept the edits).

const SYNC = 0 // y-protocols message type: sync
const AUTH = 2 // y-protocols message type: auth
const STEP1 = 0 // sync message subtype: step 1 (a state vector)
const SLOW_SEND_MS = 1000 // live edits still buffered after this long are shown as "sending"

/**
 * @typedef {'connecting'|'reconnecting'|'offline'|'syncing'|'synced'|'denied'} State
 */

export class SyncStatus {
  /**
   * @param {import('y-websocket').WebsocketProvider} provider
   * @param {import('yjs').Doc} ydoc
   * @param {object} opts
   * @param {string} opts.key localStorage key for the unsent-edit count
   * @param {Set<any>} opts.remoteOrigins transaction origins that are not local edits (provider, idb)
   * @param {(s: SyncStatus) => void} opts.onChange
   */
  constructor (provider, ydoc, { key, remoteOrigins, onChange }) {
    this.provider = provider
    this.ydoc = ydoc
    this.key = key
    this.remoteOrigins = remoteOrigins
    this.onChange = onChange
    /** @type {State} */
    this.state = 'connecting'
    /** edits made while not connected (or in flight when a connection dropped) */
    this.offlineEdits = this.#load()
    /** edits written to the open socket whose bytes may not have left the browser yet */
    this.liveEdits = 0
    /** on this connection, our reply to the server's step 1 has been written */
    this.answeredServer = false
    this.everConnected = false
    this.online = navigator.onLine !== false
    /** why the server refused this page (a 44xx close, or 401/403 from the API); '' if it did not */
    this.deniedReason = ''
    /** this person may read but not write (a read-only token, or the server said so) */
    this.readOnly = false
    this.readOnlyReason = ''
    this.history = [] // every state shown, for tests and debugging
    /** false until the page asks the provider to connect (it first loads the local copy) */
    this.started = false
    /** when the oldest live edit not yet known to have left the browser was made */
    this.liveSince = 0

    // Peek at every sync message from the server before the provider handles it: a step 1 means
    // the provider is about to answer with everything the server lacks.
    const origSync = provider.messageHandlers[SYNC]
    provider.messageHandlers[SYNC] = (encoder, decoder, p, emitSynced, type) => {
      const sub = decoder.arr[decoder.pos]
      origSync(encoder, decoder, p, emitSynced, type)
      if (emitSynced && sub === STEP1) {
        // the provider sends the encoder's content right after this handler returns
        setTimeout(() => { this.answeredServer = true; this.#check() }, 0)
      }
    }
    const origAuth = provider.messageHandlers[AUTH]
    provider.messageHandlers[AUTH] = (encoder, decoder, p, emitSynced, type) => {
      const pos = decoder.pos
      origAuth(encoder, decoder, p, emitSynced, type)
      // permission denied: [0, reason string]; read it ourselves to show the reason
      if (decoder.arr[pos] === 0) this.setReadOnly(readString(decoder.arr, pos + 1) || 'permission denied')
    }

    provider.on('status', () => {
      if (!provider.wsconnected) {
        this.answeredServer = false
        this.offlineEdits += this.liveEdits
        this.liveEdits = 0
        this.#save()
      } else {
        this.everConnected = true
      }
      this.#update()
    })
    provider.on('sync', () => this.#update())
    provider.on('closed', (ev) => {
      this.deniedReason = ev.reason || `connection refused (${ev.code})`
      this.#update()
    })
    ydoc.on('update', (_update, origin) => {
      if (this.remoteOrigins.has(origin)) return
      if (provider.wsconnected) {
        if (this.liveEdits === 0) this.liveSince = Date.now()
        this.liveEdits++
      } else {
        this.offlineEdits++
      }
      this.#save()
      this.#update()
    })
    // Trust navigator.onLine over the event's name: emulated networks (and some browsers during a
    // navigation) fire "online" while still offline.
    const net = () => { this.online = navigator.onLine !== false; this.#update() }
    window.addEventListener('online', net)
    window.addEventListener('offline', net)
    this.#update()
  }

  #timer = 0
  #slowTimer = 0

  /** setReadOnly records that this person may read but not write, with the reason shown. */
  setReadOnly (reason) {
    this.readOnly = true
    this.readOnlyReason = reason
    this.#update()
  }

  /**
   * deny records that the server refused this page (e.g. the API said 401/403 while the socket
   * keeps failing): stop retrying and say why, instead of "reconnecting" forever.
   */
  deny (reason) {
    if (this.provider.synced) return // the socket got in: the refusal was about something else
    this.deniedReason = reason
    this.provider.disconnect()
    this.#update()
  }

  /** The server refused this page; reconnecting will not help. */
  get denied () {
    return this.deniedReason !== ''
  }

  /** start is called when the page first asks the provider to connect. */
  start () {
    this.started = true
    this.#update()
  }

  /** Edits of this page (and of earlier visits, if they never got through) the server has not got. */
  get pending () {
    return this.offlineEdits + this.liveEdits
  }

  #load () {
    try {
      const n = parseInt(window.localStorage.getItem(this.key) || '0', 10)
      return Number.isFinite(n) && n > 0 ? n : 0
    } catch {
      return 0
    }
  }

  #save () {
    try {
      if (this.pending > 0) window.localStorage.setItem(this.key, String(this.pending))
      else window.localStorage.removeItem(this.key)
    } catch {}
  }

  // #check clears what has provably left the browser and polls while bytes are still buffered.
  #check () {
    const ws = this.provider.ws
    const open = this.provider.wsconnected && ws && ws.readyState === 1
    if (!open) return
    if (ws.bufferedAmount === 0) {
      let changed = false
      if (this.liveEdits > 0) { this.liveEdits = 0; changed = true }
      if (this.answeredServer && this.offlineEdits > 0) { this.offlineEdits = 0; changed = true }
      if (changed) { this.#save(); this.#update() }
    }
    if (this.pending > 0 && (this.liveEdits > 0 || this.answeredServer) && !this.#timer) {
      this.#timer = window.setTimeout(() => { this.#timer = 0; this.#check() }, 100)
    }
  }

  #update () {
    const p = this.provider
    /** @type {State} */
    let s
    if (this.denied) s = 'denied'
    else if (!this.online || (this.started && !p.shouldConnect)) s = 'offline'
    else if (!p.wsconnected) s = this.everConnected || this.pending > 0 ? 'reconnecting' : 'connecting'
    else if (!p.synced || this.offlineEdits > 0 || this.#slowLive()) s = 'syncing'
    else s = 'synced'
    if (s !== this.state || this.history.length === 0) this.history.push(s)
    this.state = s
    if (p.wsconnected && this.pending > 0) queueMicrotask(() => this.#check())
    this.onChange(this)
  }

  // #slowLive says whether live edits have waited long enough in the send buffer to be worth
  // showing: a keystroke normally leaves within milliseconds, and a status that blinks on every
  // keystroke would teach people to ignore it.
  #slowLive () {
    if (this.liveEdits === 0) return false
    const wait = SLOW_SEND_MS - (Date.now() - this.liveSince)
    if (wait <= 0) return true
    if (!this.#slowTimer) this.#slowTimer = window.setTimeout(() => { this.#slowTimer = 0; this.#update() }, wait + 10)
    return false
  }

  /** A short sentence for the status line. */
  get label () {
    const n = this.pending
    const edits = n === 1 ? '1 change' : `${n} changes`
    switch (this.state) {
      case 'denied': return `No access: ${this.deniedReason}`
      case 'offline': return n > 0 ? `Offline · ${edits} kept on this device, not yet sent` : 'Offline · editing on this device'
      case 'connecting': return 'Connecting…'
      case 'reconnecting': return n > 0 ? `Reconnecting… · ${edits} not yet sent` : 'Reconnecting…'
      case 'syncing': return n > 0 ? `Sending ${edits}…` : 'Syncing…'
      case 'synced': return this.readOnly ? 'Read-only · up to date' : 'Synced · all changes saved'
    }
    return this.state
  }
}

// readString decodes a lib0 var-string (varuint length + UTF-8) without trusting the length.
const readString = (arr, pos) => {
  let len = 0
  let shift = 0
  while (pos < arr.length) {
    const b = arr[pos++]
    len += (b & 0x7f) * 2 ** shift
    shift += 7
    if (b < 0x80) break
    if (shift > 35) return ''
  }
  if (pos + len > arr.length) return ''
  return new TextDecoder().decode(arr.subarray(pos, pos + len))
}
