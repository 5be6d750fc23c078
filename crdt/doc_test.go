package crdt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// fixtureUpdates returns every update of the remote scenarios in
// testdata/yjs.json.
func fixtureUpdates(t testing.TB) [][]byte {
	var fx yjsScenarios
	readJSONFixture(t, "testdata/yjs.json", &fx)
	var out [][]byte
	for _, sc := range fx.Remote {
		for _, u := range sc.Updates {
			out = append(out, unhex(t, u))
		}
	}
	return out
}

// TestApplyUpdateBadLeavesDocUnchanged corrupts the tail of valid updates in
// several ways: every such update must fail and leave the document as it was.
func TestApplyUpdateBadLeavesDocUnchanged(t *testing.T) {
	var fx yjsScenarios
	readJSONFixture(t, "testdata/yjs.json", &fx)
	for _, sc := range fx.Remote {
		if len(sc.Updates) < 2 {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			d := NewDoc(Options{ClientID: 5, DisableGC: !sc.GC})
			if _, err := d.ApplyUpdate(unhex(t, sc.Updates[0])); err != nil {
				t.Fatal(err)
			}
			before, _ := d.EncodeStateAsUpdate(nil)
			text := d.GetText("text").String()
			last := unhex(t, sc.Updates[len(sc.Updates)-1])
			corrupt := map[string][]byte{
				"truncated by one":  last[:len(last)-1],
				"truncated by half": last[:len(last)/2],
				"trailing garbage":  append(bytes.Clone(last), 0x01),
				"tail 0xff":         append(bytes.Clone(last[:len(last)-1]), 0xff),
				"truncated by two":  last[:len(last)-2],
				"varint cut":        append(bytes.Clone(last), 0x80),
			}
			for name, bad := range corrupt {
				changed, err := d.ApplyUpdate(bad)
				if err == nil {
					t.Fatalf("%s: applied without error", name)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v does not wrap ErrMalformed", name, err)
				}
				if changed != nil {
					t.Fatalf("%s: reported a change", name)
				}
				after, _ := d.EncodeStateAsUpdate(nil)
				if !bytes.Equal(before, after) || d.GetText("text").String() != text {
					t.Fatalf("%s: the document changed", name)
				}
				if err := d.transactErr(func(tx *Transaction) error { return tx.ApplyUpdate(bad) }); err == nil {
					t.Fatalf("%s: tx.ApplyUpdate accepted it", name)
				}
			}
		})
	}
}

// Transact in doc_test returns only the error; the changed update is
// checked in TestTransactBatch.
func (d *Doc) transactErr(fn func(tx *Transaction) error) error {
	_, err := d.Transact(fn)
	return err
}

// TestTransactBatch applies many updates in one transaction: the update it
// returns brings a doc in the state before the batch to the state after it.
func TestTransactBatch(t *testing.T) {
	ups := fixtureUpdates(t)
	d := NewDoc(Options{ClientID: 5})
	base := NewDoc(Options{ClientID: 6})
	rng := rand.New(rand.NewPCG(1, 2))
	for start := 0; start < len(ups); {
		n := 1 + rng.IntN(5)
		batch := ups[start:min(start+n, len(ups))]
		start += n
		changed, err := d.Transact(func(tx *Transaction) error {
			for _, u := range batch {
				if err := tx.ApplyUpdate(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if changed != nil {
			if _, err := base.ApplyUpdate(changed); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(base.EncodeStateVector(), d.EncodeStateVector()) {
			t.Fatalf("after batch ending at %d: state vectors differ", start)
		}
		if base.GetText("text").String() != d.GetText("text").String() {
			t.Fatalf("after batch ending at %d: texts differ", start)
		}
	}
	// Nothing new: no update.
	changed, err := d.Transact(func(tx *Transaction) error { return tx.ApplyUpdate(ups[0]) })
	if err != nil || changed != nil {
		t.Fatalf("re-applying: %x, %v", changed, err)
	}
	if _, err := d.Transact(func(tx *Transaction) error {
		_, err := d.Transact(func(*Transaction) error { return nil })
		return err
	}); !errors.Is(err, ErrNestedTransaction) {
		t.Fatalf("nested Transact: %v", err)
	}
}

// utf16Model is the reference for random edits: the text as UTF-16 units,
// with Yjs's rule that cutting a surrogate pair turns both halves into
// U+FFFD.
type utf16Model []uint16

func (m utf16Model) fixSplit(pos int) {
	if pos > 0 && pos < len(m) && utf16.IsSurrogate(rune(m[pos-1])) && m[pos-1] < 0xDC00 && m[pos] >= 0xDC00 {
		m[pos-1], m[pos] = 0xFFFD, 0xFFFD
	}
}

func (m utf16Model) String() string { return string(utf16.Decode(m)) }

// TestTextRandomEdits drives Text through random inserts and deletes at
// UTF-16 positions (astral characters and pair-splitting positions
// included), one or several per transaction, against the model; a second
// doc applies every emitted update and must agree, and its encoded state
// must equal the editor's.
func TestTextRandomEdits(t *testing.T) {
	alphabet := []string{"a", "b", "é", "😀", "\n", "中", "🏳️‍🌈", "xyz"}
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		d := NewDoc(Options{ClientID: seed})
		peer := NewDoc(Options{ClientID: 1000 + seed})
		text := d.GetText("text")
		var model utf16Model
		for step := 0; step < 1500; step++ {
			changed, err := d.Transact(func(tx *Transaction) error {
				for k := rng.IntN(3); k >= 0; k-- {
					if len(model) > 0 && rng.IntN(3) == 0 {
						pos := rng.IntN(len(model))
						n := 1 + rng.IntN(min(8, len(model)-pos))
						if err := text.Delete(tx, pos, n); err != nil {
							return err
						}
						model.fixSplit(pos)
						model.fixSplit(pos + n)
						model = append(model[:pos], model[pos+n:]...)
						continue
					}
					var sb strings.Builder
					for i := rng.IntN(4); i >= 0; i-- {
						sb.WriteString(alphabet[rng.IntN(len(alphabet))])
					}
					pos := rng.IntN(len(model) + 1)
					if err := text.Insert(tx, pos, sb.String()); err != nil {
						return err
					}
					model.fixSplit(pos)
					ins := utf16.Encode([]rune(sb.String()))
					model = append(model[:pos], append(ins, model[pos:]...)...)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			if got, want := text.String(), model.String(); got != want {
				t.Fatalf("seed %d step %d: text\n %q\nwant\n %q", seed, step, got, want)
			}
			if text.Len() != len(model) {
				t.Fatalf("seed %d step %d: Len %d, want %d", seed, step, text.Len(), len(model))
			}
			if _, err := peer.ApplyUpdate(changed); err != nil {
				t.Fatal(err)
			}
			if step%100 == 0 {
				if err := d.checkInvariants(); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
			}
		}
		a, _ := d.EncodeStateAsUpdate(nil)
		b, _ := peer.EncodeStateAsUpdate(nil)
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: the peer's state differs from the editor's", seed)
		}
		if peer.GetText("text").String() != text.String() {
			t.Fatalf("seed %d: the peer's text differs", seed)
		}
	}
}

func TestTextErrors(t *testing.T) {
	d := NewDoc(Options{ClientID: 1})
	other := NewDoc(Options{ClientID: 2})
	text := d.GetText("t")
	if _, err := d.Transact(func(tx *Transaction) error { return text.Insert(tx, 0, "hello") }); err != nil {
		t.Fatal(err)
	}
	var saved *Transaction
	tests := []struct {
		name string
		fn   func(tx *Transaction) error
	}{
		{"insert past the end", func(tx *Transaction) error { return text.Insert(tx, 6, "x") }},
		{"insert before the start", func(tx *Transaction) error { return text.Insert(tx, -1, "x") }},
		{"delete past the end", func(tx *Transaction) error { return text.Delete(tx, 3, 3) }},
		{"negative delete", func(tx *Transaction) error { return text.Delete(tx, 3, -1) }},
		{"invalid UTF-8", func(tx *Transaction) error { return text.Insert(tx, 0, "\xff") }},
		{"transaction of another doc", func(*Transaction) error {
			_, err := other.Transact(func(otx *Transaction) error { return text.Insert(otx, 0, "x") })
			return err
		}},
		{"finished transaction", func(tx *Transaction) error { saved = tx; return nil }},
	}
	for _, tc := range tests {
		changed, err := d.Transact(tc.fn)
		if tc.name == "finished transaction" {
			err = text.Insert(saved, 0, "x")
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
		if changed != nil {
			t.Errorf("%s: changed the document", tc.name)
		}
	}
	if text.String() != "hello" {
		t.Fatalf("text %q", text.String())
	}
}

func TestSummarize(t *testing.T) {
	d := NewDoc(Options{ClientID: 3})
	text := d.GetText("text")
	if _, err := d.Transact(func(tx *Transaction) error { return text.Insert(tx, 0, "hello world") }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Transact(func(tx *Transaction) error { return text.Delete(tx, 2, 3) }); err != nil {
		t.Fatal(err)
	}
	u, _ := d.EncodeStateAsUpdate(nil)
	s, err := Summarize(u)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{StateVector: map[uint64]uint64{3: 11}, Structs: 3, Items: 3, DeletedItems: 1, DeleteRanges: 1, Bytes: len(u)}
	if s.Structs != want.Structs || s.Items != want.Items || s.GC != 0 || s.DeletedItems != 1 || s.DeleteRanges != 1 || s.Bytes != len(u) || s.StateVector[3] != 11 || len(s.StateVector) != 1 {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if _, err := Summarize(u[:len(u)-1]); err == nil {
		t.Fatal("a truncated update summarized")
	}
}

// edit runs fn in a transaction of d and returns the update it produced.
func edit(t *testing.T, d *Doc, fn func(tx *Transaction, text *Text) error) []byte {
	t.Helper()
	u, err := d.Transact(func(tx *Transaction) error { return fn(tx, d.GetText("text")) })
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPendingDeletes: a deletion of content the doc has not seen waits,
// survives other updates, and applies when the content arrives.
func TestPendingDeletes(t *testing.T) {
	a := NewDoc(Options{ClientID: 1})
	insert := edit(t, a, func(tx *Transaction, x *Text) error { return x.Insert(tx, 0, "hello world") })
	more := edit(t, a, func(tx *Transaction, x *Text) error { return x.Insert(tx, 11, "!") })
	del := edit(t, a, func(tx *Transaction, x *Text) error { return x.Delete(tx, 0, 6) })

	b := NewDoc(Options{ClientID: 2})
	changed, err := b.ApplyUpdate(del)
	if err != nil || changed != nil {
		t.Fatalf("delete of unknown content: changed %x, err %v", changed, err)
	}
	if !b.HasPending() {
		t.Fatal("the delete is not pending")
	}
	// Structs that depend on missing ones wait as well.
	if _, err := b.ApplyUpdate(more); err != nil || !b.HasPending() || b.GetText("text").String() != "" {
		t.Fatalf("out-of-order insert: err %v, text %q", err, b.GetText("text").String())
	}
	// While pending, the state handed to peers carries both, as Yjs's does.
	state, _ := b.EncodeStateAsUpdate(nil)
	c := NewDoc(Options{ClientID: 3})
	if _, err := c.ApplyUpdate(state); err != nil || !c.HasPending() {
		t.Fatalf("pending state did not carry over: %v", err)
	}
	// The pending part alone, as a server stores it, waits the same way in a
	// doc loaded from it, and has no text of its own.
	pending := b.EncodePending()
	e := NewDoc(Options{ClientID: 5})
	if _, err := e.ApplyUpdate(pending); err != nil || !e.HasPending() || e.GetText("text").String() != "" {
		t.Fatalf("pending update: err %v, pending %v, text %q", err, e.HasPending(), e.GetText("text").String())
	}
	if _, err := e.ApplyUpdate(insert); err != nil || e.GetText("text").String() != "world!" || e.HasPending() {
		t.Fatalf("doc loaded from the pending update, then the insert: %q, %v", e.GetText("text").String(), err)
	}
	changed, err = b.ApplyUpdate(insert)
	if err != nil {
		t.Fatal(err)
	}
	if b.HasPending() || b.EncodePending() != nil {
		t.Fatal("still pending after the missing update arrived")
	}
	if got := b.GetText("text").String(); got != "world!" {
		t.Fatalf("text %q", got)
	}
	// The update of that transaction holds everything that became real.
	d := NewDoc(Options{ClientID: 4})
	if _, err := d.ApplyUpdate(changed); err != nil || d.GetText("text").String() != "world!" {
		t.Fatalf("changed update gives %q, %v", d.GetText("text").String(), err)
	}
	if _, err := c.ApplyUpdate(insert); err != nil || c.GetText("text").String() != "world!" || c.HasPending() {
		t.Fatalf("peer from pending state: %q, %v", c.GetText("text").String(), err)
	}
}

// structIDs lists the structs of client id as "clock+length" strings, with
// a D for deleted items and GC for GC structs.
func structIDs(d *Doc, client uint64) []string {
	ci, ok := d.clientIndexOf(client)
	if !ok {
		return nil
	}
	var out []string
	d.clients[ci].each(func(ii int32) {
		it := &d.items[ii]
		s := strconv.Itoa(int(it.clock)) + "+" + strconv.Itoa(int(it.length))
		switch {
		case it.isGC():
			s += "GC"
		case it.deleted():
			s += "D"
		}
		out = append(out, s)
	})
	return out
}

// TestSplitsAndMerges follows the struct store of one client through
// splits (an insert inside a run, a deletion of its middle) and the merges
// at the end of each transaction.
func TestSplitsAndMerges(t *testing.T) {
	a := NewDoc(Options{ClientID: 1})
	b := NewDoc(Options{ClientID: 2})
	sync := func(u []byte) {
		if _, err := b.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		fn   func(tx *Transaction, x *Text) error
		want []string // structs of client 1 in b
		text string
	}{
		{"typing merges", func(tx *Transaction, x *Text) error {
			for i, c := range "abcdef" {
				if err := x.Insert(tx, i, string(c)); err != nil {
					return err
				}
			}
			return nil
		}, []string{"0+6"}, "abcdef"},
		{"typing in two transactions merges", func(tx *Transaction, x *Text) error { return x.Insert(tx, 6, "gh") }, []string{"0+8"}, "abcdefgh"},
		{"deleting the middle splits", func(tx *Transaction, x *Text) error { return x.Delete(tx, 2, 3) }, []string{"0+2", "2+3D", "5+3"}, "abfgh"},
		{"inserting inside a run splits it", func(tx *Transaction, x *Text) error { return x.Insert(tx, 4, "X") }, []string{"0+2", "2+3D", "5+2", "7+1", "8+1"}, "abfgXh"},
		{"deleting neighbours merges the deleted runs", func(tx *Transaction, x *Text) error { return x.Delete(tx, 1, 2) }, []string{"0+1", "1+5D", "6+1", "7+1", "8+1"}, "agXh"},
	}
	for _, st := range steps {
		sync(edit(t, a, st.fn))
		if got := structIDs(b, 1); !slices.Equal(got, st.want) {
			t.Fatalf("%s: structs %v, want %v", st.name, got, st.want)
		}
		if got := structIDs(a, 1); !slices.Equal(got, st.want) {
			t.Fatalf("%s: editor's structs %v, want %v", st.name, got, st.want)
		}
		if got := b.GetText("text").String(); got != st.text {
			t.Fatalf("%s: text %q, want %q", st.name, got, st.text)
		}
	}
}
