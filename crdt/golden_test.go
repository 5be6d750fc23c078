package crdt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
)

// Golden fixtures written by real lib0 and Yjs: testdata/gen/gen.mjs.

type lib0Fixtures struct {
	VarUint      []struct{ Value, Hex string }
	VarInt       []struct{ Value, Hex string }
	VarString    []struct{ Value, Hex string }
	Any          []struct{ Name, Hex string }
	AnyNormalize []struct{ Name, In, Out string }
	JSON         []struct{ In, Out string }
}

func readJSONFixture(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLib0Golden(t *testing.T) {
	var fx lib0Fixtures
	readJSONFixture(t, "testdata/lib0.json", &fx)
	t.Run("varUint", func(t *testing.T) {
		for _, c := range fx.VarUint {
			v, err := strconv.ParseUint(c.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			e := &encoder{}
			e.writeVarUint(v)
			if got := hex.EncodeToString(e.bytes()); got != c.Hex {
				t.Errorf("writeVarUint(%d) = %s, want %s", v, got, c.Hex)
			}
			d := newDecoder(unhex(t, c.Hex))
			if got := d.readVarUint(); got != v || d.err != nil || d.remaining() != 0 {
				t.Errorf("readVarUint(%s) = %d, %v", c.Hex, got, d.err)
			}
		}
	})
	t.Run("varInt", func(t *testing.T) {
		for _, c := range fx.VarInt {
			neg := c.Value[0] == '-'
			mag, err := strconv.ParseUint(c.Value[map[bool]int{true: 1}[neg]:], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			e := &encoder{}
			e.writeVarInt(neg, mag)
			if got := hex.EncodeToString(e.bytes()); got != c.Hex {
				t.Errorf("writeVarInt(%s) = %s, want %s", c.Value, got, c.Hex)
			}
			d := newDecoder(unhex(t, c.Hex))
			gn, gm := d.readVarInt()
			if gn != neg || gm != mag || d.err != nil || d.remaining() != 0 {
				t.Errorf("readVarInt(%s) = %v %d, %v", c.Hex, gn, gm, d.err)
			}
		}
	})
	t.Run("varString", func(t *testing.T) {
		for _, c := range fx.VarString {
			e := &encoder{}
			e.writeVarString(c.Value)
			if got := hex.EncodeToString(e.bytes()); got != c.Hex {
				t.Errorf("writeVarString(%q) = %s, want %s", c.Value, got, c.Hex)
			}
			d := newDecoder(unhex(t, c.Hex))
			if got := d.readVarString(); got != c.Value || d.err != nil {
				t.Errorf("readVarString(%s) = %q, %v", c.Hex, got, d.err)
			}
			if n := utf16Len([]byte(c.Value)); n != len([]rune(c.Value))+countAstral(c.Value) {
				t.Errorf("utf16Len(%q) = %d", c.Value, n)
			}
		}
	})
	t.Run("any", func(t *testing.T) {
		for _, c := range fx.Any {
			b := unhex(t, c.Hex)
			d := newDecoder(b)
			v := d.readAny(0)
			if d.err != nil || d.remaining() != 0 {
				t.Fatalf("%s: readAny: %v (%d left)", c.Name, d.err, d.remaining())
			}
			e := &encoder{}
			e.writeAny(v)
			if !bytes.Equal(e.bytes(), b) {
				t.Errorf("%s: re-encoded %x, want %s", c.Name, e.bytes(), c.Hex)
			}
		}
	})
	t.Run("anyNormalize", func(t *testing.T) {
		for _, c := range fx.AnyNormalize {
			d := newDecoder(unhex(t, c.In))
			v := d.readAny(0)
			if d.err != nil {
				t.Fatalf("%s: %v", c.Name, d.err)
			}
			e := &encoder{}
			e.writeAny(v)
			if got := hex.EncodeToString(e.bytes()); got != c.Out {
				t.Errorf("%s: %s re-encodes as %s, Yjs writes %s", c.Name, c.In, got, c.Out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		for _, c := range fx.JSON {
			v, ok := parseJSON([]byte(c.In))
			if !ok {
				t.Fatalf("parseJSON(%s) failed", c.In)
			}
			if got, _ := stringifyJSON(v); got != c.Out {
				t.Errorf("JSON.stringify(JSON.parse(%s)) = %s, want %s", c.In, got, c.Out)
			}
		}
	})
}

func countAstral(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		read func(d *decoder)
	}{
		{"varuint truncated", "80", func(d *decoder) { d.readVarUint() }},
		{"varuint overlong", "8000", func(d *decoder) { d.readVarUint() }},
		{"varuint overflow", "ffffffffffffffffff02", func(d *decoder) { d.readVarUint() }},
		{"varint truncated", "c0", func(d *decoder) { d.readVarInt() }},
		{"varint overlong", "8000", func(d *decoder) { d.readVarInt() }},
		{"string truncated", "0561", func(d *decoder) { d.readVarString() }},
		{"string huge length", "ffffffff0f61", func(d *decoder) { d.readVarString() }},
		{"string invalid utf8", "02c328", func(d *decoder) { d.readVarString() }},
		{"string lone surrogate", "03eda080", func(d *decoder) { d.readVarString() }},
		{"any unknown tag", "10", func(d *decoder) { d.readAny(0) }},
		{"any float truncated", "7b0000", func(d *decoder) { d.readAny(0) }},
		{"any huge array", "75ffffffff0f", func(d *decoder) { d.readAny(0) }},
		{"any huge object", "76ffffffff0f", func(d *decoder) { d.readAny(0) }},
		{"any varint beyond 2^53", "7dffffffffffffff7f", func(d *decoder) { d.readAny(0) }},
		{"any nesting", string(bytes.Repeat([]byte("7501"), 300)) + "7f", func(d *decoder) { d.readAny(0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(unhex(t, tc.in))
			tc.read(d)
			if d.err == nil {
				t.Fatalf("no error decoding %s", tc.in)
			}
		})
	}
}

func TestJSNumberFormat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1.5, "-1.5"}, {1e21, "1e+21"}, {1e20, "100000000000000000000"},
		{123e-9, "1.23e-7"}, {0.000001, "0.000001"}, {5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{pointThree(), "0.30000000000000004"}, {1 << 53, "9007199254740992"},
	}
	for _, tc := range tests {
		if got := string(appendJSNumber(nil, tc.f)); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.f, got, tc.want)
		}
	}
}

type yjsScenarios struct {
	Remote []struct {
		Name    string
		GC      bool
		Updates []string
		Steps   []struct {
			Apply   int
			Emitted *string
			State   string
			SV      string
			Pending bool
		}
		Text  string
		Diffs []struct{ SV, Update string }
	}
	Local []struct {
		Name   string
		Client uint64
		Setup  *string
		Steps  []struct {
			Ops []struct {
				Insert *string
				Delete int
				Pos    int
			}
			Update *string
			Text   string
		}
		State string
	}
}

// TestYjsScenarios replays the remote scenarios of testdata/yjs.json: every
// content kind, surrogate pairs split by concurrent inserts, pending structs
// and deletes (applied out of order, duplicated), garbage collection of
// nested types with and without GC, concurrent inserts from many clients.
// After every update: the update the doc emits, its state (pending
// included), its state vector and pending flag are Yjs's, byte for byte.
func TestYjsScenarios(t *testing.T) {
	var fx yjsScenarios
	readJSONFixture(t, "testdata/yjs.json", &fx)
	for _, sc := range fx.Remote {
		t.Run(sc.Name, func(t *testing.T) {
			d := NewDoc(Options{ClientID: 999, DisableGC: !sc.GC})
			for i, st := range sc.Steps {
				changed, err := d.ApplyUpdate(unhex(t, sc.Updates[st.Apply]))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var want []byte
				if st.Emitted != nil {
					want = unhex(t, *st.Emitted)
				}
				if !bytes.Equal(changed, want) {
					t.Fatalf("step %d (update %d): emitted\n %x\nwant\n %x", i, st.Apply, changed, want)
				}
				state, err := d.EncodeStateAsUpdate(nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := hex.EncodeToString(state); got != st.State {
					t.Fatalf("step %d: state\n %s\nwant\n %s", i, got, st.State)
				}
				if got := hex.EncodeToString(d.EncodeStateVector()); got != st.SV {
					t.Fatalf("step %d: state vector %s, want %s", i, got, st.SV)
				}
				if d.HasPending() != st.Pending {
					t.Fatalf("step %d: pending %v, want %v", i, d.HasPending(), st.Pending)
				}
			}
			if got := d.GetText("text").String(); got != sc.Text {
				t.Fatalf("text %q, want %q", got, sc.Text)
			}
			for _, df := range sc.Diffs {
				got, err := d.EncodeStateAsUpdate(unhex(t, df.SV))
				if err != nil {
					t.Fatal(err)
				}
				if hex.EncodeToString(got) != df.Update {
					t.Fatalf("diff against %s:\n %x\nwant\n %s", df.SV, got, df.Update)
				}
			}
		})
	}
}

// TestLocalTextEdits replays Y.Text edits made in Yjs with the same client id
// through Text.Insert/Delete: each transaction's update and the final state
// must be Yjs's.
func TestLocalTextEdits(t *testing.T) {
	var fx yjsScenarios
	readJSONFixture(t, "testdata/yjs.json", &fx)
	for _, sc := range fx.Local {
		t.Run(sc.Name, func(t *testing.T) {
			d := NewDoc(Options{ClientID: sc.Client})
			if sc.Setup != nil {
				if _, err := d.ApplyUpdate(unhex(t, *sc.Setup)); err != nil {
					t.Fatal(err)
				}
			}
			text := d.GetText("text")
			for i, st := range sc.Steps {
				changed, err := d.Transact(func(tx *Transaction) error {
					for _, op := range st.Ops {
						if op.Insert != nil {
							if err := text.Insert(tx, op.Pos, *op.Insert); err != nil {
								return err
							}
						} else if err := text.Delete(tx, op.Pos, op.Delete); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var want []byte
				if st.Update != nil {
					want = unhex(t, *st.Update)
				}
				if !bytes.Equal(changed, want) {
					t.Fatalf("step %d: update\n %x\nwant\n %x", i, changed, want)
				}
				if got := text.String(); got != st.Text {
					t.Fatalf("step %d: text %q, want %q", i, got, st.Text)
				}
			}
			state, _ := d.EncodeStateAsUpdate(nil)
			if got := hex.EncodeToString(state); got != sc.State {
				t.Fatalf("final state\n %s\nwant\n %s", got, sc.State)
			}
		})
	}
}

// pointThree is 0.1+0.2 computed at run time (constants are exact in Go).
func pointThree() float64 {
	a, b := 0.1, 0.2
	return a + b
}
