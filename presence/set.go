package presence

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Timeout is how long a state lives without renewal, as y-protocols'
// outdatedTimeout. Clients renew their state every 15 s, so a live client
// never reaches it; one that vanished without a word is dropped by Expire.
const Timeout = 30 * time.Second

// TombstoneTTL is how long a removed client's clock is remembered. While it
// is, a delayed update with an older clock cannot resurrect the client. The
// only such delays are peers echoing a state they received just before its
// removal, which arrive within a round trip; forgetting the clock afterwards
// keeps a long-lived room from growing with every client that ever visited,
// and lets a client that comes back much later with its old clock in.
const TombstoneTTL = 10 * Timeout

// MaxOwned is how many live states one connection may speak for. A Yjs
// client speaks for one, its own; a connection that claims more is not a
// Yjs client, and every state it adds costs each peer a copy.
const MaxOwned = 16

// MaxNewPerUpdate is how many clients the Set has never seen one update may
// name. A client's updates name itself, and echo the states it received
// (which the Set knows); an update naming thousands of unknown clients would
// grow the Set by a record each (removals are remembered for TombstoneTTL).
const MaxNewPerUpdate = 64

// ErrTooManyClients is what Admit returns for an update over MaxOwned or
// MaxNewPerUpdate.
var ErrTooManyClients = errors.New("presence: too many awareness clients")

// client is what a Set knows of one client id: y-protocols' meta (clock and
// last update) plus its state, and which connection speaks for it.
type client struct {
	clock   uint64
	state   json.RawMessage // nil when removed (a tombstone)
	updated time.Time       // last accepted update or removal
	owner   uint64          // valid when owned
	owned   bool
}

// Set holds the awareness states of one document. It is not safe for
// concurrent use: the room goroutine owns it. The State of every entry it
// returns is shared with the Set and with other returned updates: read it,
// encode it, never modify it.
type Set struct {
	clients map[uint64]*client
	byOwner map[uint64]map[uint64]struct{}
	live    int
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{
		clients: make(map[uint64]*client),
		byOwner: make(map[uint64]map[uint64]struct{}),
	}
}

// Apply applies u, received from the connection owner at now, with the
// rules of y-protocols' applyAwarenessUpdate: an entry is accepted when its
// clock is newer than the known one (0 for an unknown client), or when it is
// null with an equal clock and the client has a state. Accepted states are
// renewed (their Timeout starts again at now) and owned by owner from then on;
// an accepted null releases the ownership.
//
// It returns what must be broadcast to the peers: one entry per client whose
// clock or state changed, with its final clock and state, in the order of
// first appearance in u. Renewals with an identical state are included,
// because peers expire states that are not renewed. A null for a client never
// seen is accepted but not returned, as y-protocols does. Apply keeps
// references to the states of u; the caller must not modify them afterwards.
func (s *Set) Apply(u Update, owner uint64, now time.Time) Update {
	var out Update
	var pos map[uint64]int // client id -> index in out, for updates with several entries
	for _, e := range u {
		c, known := s.clients[e.ClientID]
		var cur uint64
		if known {
			cur = c.clock
		}
		null := isNull(e.State)
		if !(cur < e.Clock || (cur == e.Clock && null && known && c.state != nil)) {
			continue
		}
		if !known {
			c = &client{}
			s.clients[e.ClientID] = c
		}
		if null {
			if c.state != nil {
				s.live--
			}
			c.state = nil
			s.disown(e.ClientID, c)
		} else {
			if c.state == nil {
				s.live++
			}
			c.state = e.State
			s.own(e.ClientID, c, owner)
		}
		c.clock = e.Clock
		c.updated = now
		if null && !known {
			continue
		}
		out = appendChange(out, &pos, e.ClientID, c, len(u))
	}
	return out
}

// appendChange records c's final clock and state in out, once per client id.
func appendChange(out Update, pos *map[uint64]int, id uint64, c *client, n int) Update {
	e := Entry{ClientID: id, Clock: c.clock, State: c.state}
	if e.State == nil {
		e.State = nullState
	}
	if n == 1 {
		return append(out, e)
	}
	if *pos == nil {
		*pos = make(map[uint64]int)
	}
	if i, ok := (*pos)[id]; ok {
		out[i] = e
		return out
	}
	(*pos)[id] = len(out)
	return append(out, e)
}

// Admit checks, before Apply, that u from owner leaves owner speaking for
// at most MaxOwned live states and names at most MaxNewPerUpdate clients
// the Set has never seen, so that an update is applied whole or not at all.
// It runs Apply's rules on a scratch view of the clients u names: what it
// counts is what Apply would do.
func (s *Set) Admit(u Update, owner uint64) error {
	type view struct {
		clock       uint64
		known, live bool
		mine        bool // owned by owner
	}
	owned := len(s.byOwner[owner])
	views := make(map[uint64]*view, len(u))
	unknown := 0
	for _, e := range u {
		v, ok := views[e.ClientID]
		if !ok {
			v = &view{}
			if c, known := s.clients[e.ClientID]; known {
				*v = view{clock: c.clock, known: true, live: c.state != nil, mine: c.owned && c.owner == owner}
			} else {
				unknown++
			}
			views[e.ClientID] = v
		}
		null := isNull(e.State)
		if !(v.clock < e.Clock || (v.clock == e.Clock && null && v.known && v.live)) {
			continue
		}
		switch {
		case null && v.mine:
			owned--
			v.mine = false
		case !null && !v.mine:
			owned++
			v.mine = true
		}
		v.live = !null
		v.clock = e.Clock
		v.known = true
	}
	if owned > MaxOwned {
		return fmt.Errorf("%w: a connection may speak for %d, this update makes it %d", ErrTooManyClients, MaxOwned, owned)
	}
	if unknown > MaxNewPerUpdate {
		return fmt.Errorf("%w: %d unknown clients in one update, at most %d", ErrTooManyClients, unknown, MaxNewPerUpdate)
	}
	return nil
}

// RemoveOwner removes the live states of every client owned by owner, as
// when its connection closes: each becomes null at its current clock, which
// every peer accepts as a removal. The removals are returned, sorted
// by client id, for broadcast to the remaining peers.
func (s *Set) RemoveOwner(owner uint64, now time.Time) Update {
	ids := s.byOwner[owner]
	if len(ids) == 0 {
		return nil
	}
	out := make(Update, 0, len(ids))
	for id := range ids {
		c := s.clients[id]
		c.owned = false
		if c.state != nil {
			out = append(out, s.remove(id, c, now))
		}
	}
	delete(s.byOwner, owner)
	sortByClient(out)
	return out
}

// Expire removes the states whose last renewal is Timeout or more before now
// (the rule of y-protocols' outdated check): each becomes null at its current
// clock. The removals are returned, sorted by client id, for broadcast.
// It also forgets the clocks of clients removed TombstoneTTL or more ago. The
// room calls it every few seconds.
func (s *Set) Expire(now time.Time) Update {
	var out Update
	for id, c := range s.clients {
		age := now.Sub(c.updated)
		switch {
		case c.state != nil && age >= Timeout:
			s.disown(id, c)
			out = append(out, s.remove(id, c, now))
		case c.state == nil && age >= TombstoneTTL:
			delete(s.clients, id)
		}
	}
	sortByClient(out)
	return out
}

// Current returns every live state, sorted by client id: what a joining
// peer is sent.
func (s *Set) Current() Update {
	out := make(Update, 0, s.live)
	for id, c := range s.clients {
		if c.state != nil {
			out = append(out, Entry{ClientID: id, Clock: c.clock, State: c.state})
		}
	}
	sortByClient(out)
	return out
}

// Len returns the number of live states.
func (s *Set) Len() int { return s.live }

// remove turns c into a tombstone at the same clock and returns the entry
// that announces it: peers accept a null at an equal clock, and keeping the
// clock (as y-protocols' removeAwarenessStates does) lets a client that
// reconnects come back with its next renewal instead of the one after.
func (s *Set) remove(id uint64, c *client, now time.Time) Entry {
	c.state = nil
	c.updated = now
	s.live--
	return Entry{ClientID: id, Clock: c.clock, State: nullState}
}

// own records that owner speaks for client id, moving it from its previous
// owner if any.
func (s *Set) own(id uint64, c *client, owner uint64) {
	if c.owned && c.owner == owner {
		return
	}
	s.disown(id, c)
	ids := s.byOwner[owner]
	if ids == nil {
		ids = make(map[uint64]struct{})
		s.byOwner[owner] = ids
	}
	ids[id] = struct{}{}
	c.owner, c.owned = owner, true
}

// disown releases client id from its owner, if it has one.
func (s *Set) disown(id uint64, c *client) {
	if !c.owned {
		return
	}
	ids := s.byOwner[c.owner]
	delete(ids, id)
	if len(ids) == 0 {
		delete(s.byOwner, c.owner)
	}
	c.owned = false
}

// isNull reports whether the JSON text is null (or empty, which EncodeUpdate
// writes as null).
func isNull(state json.RawMessage) bool {
	return len(state) == 0 || bytes.Equal(bytes.Trim(state, " \t\r\n"), nullState)
}

func sortByClient(u Update) {
	slices.SortFunc(u, func(a, b Entry) int { return cmp.Compare(a.ClientID, b.ClientID) })
}
