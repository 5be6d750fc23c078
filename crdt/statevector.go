package crdt

import (
	"fmt"
	"slices"
)

// StateVector maps each client id to the next clock expected from it: the
// number of units of that client a document holds.
type StateVector map[uint64]uint64

// DecodeStateVector decodes a state vector as Yjs's decodeStateVector does.
// A client listed twice keeps its last clock, as in Yjs.
func DecodeStateVector(b []byte) (StateVector, error) {
	d := newDecoder(b)
	sv := readStateVector(d)
	if d.err != nil {
		return nil, fmt.Errorf("decode state vector: %w", d.err)
	}
	return sv, nil
}

func readStateVector(d *decoder) StateVector {
	n := d.readVarUint()
	// Every entry takes at least two bytes; never preallocate past that.
	sv := make(StateVector, min(n, uint64(d.remaining()/2)))
	for i := uint64(0); i < n && d.err == nil; i++ {
		client := d.readVarUint()
		clock := d.readVarUint()
		if d.err == nil {
			sv[client] = clock
		}
	}
	return sv
}

// Encode encodes sv as Yjs's encodeStateVector does: highest client first.
func (sv StateVector) Encode() []byte {
	clients := make([]uint64, 0, len(sv))
	for c := range sv {
		clients = append(clients, c)
	}
	slices.SortFunc(clients, func(a, b uint64) int { return cmpDesc(a, b) })
	e := &encoder{}
	e.writeVarUint(uint64(len(clients)))
	for _, c := range clients {
		e.writeVarUint(c)
		e.writeVarUint(sv[c])
	}
	return e.bytes()
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
