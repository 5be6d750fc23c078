package crdt

import (
	"bytes"
	"errors"
	"math/rand/v2"
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
