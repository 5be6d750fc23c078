package doc

// A Turn lets a read loop hand the rooms every message of one readiness
// wake-up before any room runs: the messages are queued as they are read,
// and each room touched runs once at the end of the turn (Run), so that the
// updates of many peers of one room arrive in one batch: one transaction,
// one commit and one merged message per peer, as Hocuspocus sends one
// message per event-loop turn. Without it a loop ran the room after every
// message, alone: at 4,000 keystrokes a second into one room of 50 peers
// that was a broadcast per keystroke.
//
// A Turn is used by one goroutine. Its zero value is ready to use.
type Turn struct {
	rooms []*room
}

// Run runs every room the turn queued messages for (unless another
// goroutine runs it already, which then handles them) and empties the turn.
func (t *Turn) Run() {
	for i, rm := range t.rooms {
		t.rooms[i] = nil
		rm.kick()
	}
	t.rooms = t.rooms[:0]
}

func (t *Turn) add(rm *room) {
	for _, r := range t.rooms {
		if r == rm {
			return
		}
	}
	t.rooms = append(t.rooms, rm)
}

// postIn queues m for the end of turn t. When the inbox is full, post runs
// the room now to make room (a turn must not wait for itself).
func (rm *room) postIn(t *Turn, m message) bool {
	ok, space := rm.inbox.put(m)
	if !ok {
		return false
	}
	if space == nil {
		t.add(rm)
		return true
	}
	return rm.post(m)
}

// UpdateIn is Update, with the room run at the end of turn t.
func (s *Session) UpdateIn(t *Turn, update []byte) {
	s.room.postIn(t, message{kind: msgUpdate, sess: s, data: update})
}

// AwarenessIn is Awareness, with the room run at the end of turn t.
func (s *Session) AwarenessIn(t *Turn, update []byte) {
	s.room.postIn(t, message{kind: msgAwareness, sess: s, data: update})
}
