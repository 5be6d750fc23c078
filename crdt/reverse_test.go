package crdt_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/crdt"
)

// The reverse differential: several crdt.Docs edit concurrently through the
// local-edit API (Text.Insert/Delete in transactions, UTF-16 positions that
// often fall inside surrogate pairs) and exchange their updates out of order;
// crdt/oracle/apply.mjs redoes exactly the same with Y.Docs of the same client
// ids. Every transaction must emit the update Yjs emits, every peer must end
// with Yjs's text, state vector and encoded state, and a fresh Yjs doc fed the
// Go updates must agree with a fresh Go doc fed the same.

// reverseScript is the JSON apply.mjs reads.
type reverseScript struct {
	Clients []uint64       `json:"clients"`
	Events  []reverseEvent `json:"events"`
}

type reverseEvent struct {
	Peer   int     `json:"peer"`
	Ops    [][]any `json:"ops,omitempty"`    // ["i", pos, text] or ["d", pos, n]
	Update string  `json:"update,omitempty"` // base64 of what Go's transaction returned
	Apply  []int   `json:"apply,omitempty"`  // edit events whose updates the peer applies, in order
}

type yjsDocState struct {
	Text        string `json:"text"`
	StateVector string `json:"stateVector"`
	State       string `json:"state"`
	Pending     bool   `json:"pending"`
}

type reverseResult struct {
	Updates []string      `json:"updates"`
	Peers   []yjsDocState `json:"peers"`
	Replay  yjsDocState   `json:"replay"`
}

// moduleRoot walks up from the test's directory to the one holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// needNode returns the node binary, skipping the test when node or the
// repo's node_modules are missing, unless CI is set (then it fails).
func needNode(t *testing.T, root string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "yjs", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("node and node_modules/yjs are needed (run `make deps-npm`): %v", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// TestReverse runs seeded multi-peer editing scripts in Go and in Yjs: seeds
// 0-7, or from QUIRE_REVERSE_BASE on (crdt/oracle/live.sh picks a fresh one).
func TestReverse(t *testing.T) {
	root := moduleRoot(t)
	node := needNode(t, root)
	base := uint64(0)
	if s := os.Getenv("QUIRE_REVERSE_BASE"); s != "" {
		var err error
		if base, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("QUIRE_REVERSE_BASE: %v", err)
		}
	}
	for seed := base; seed < base+8; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			runReverse(t, root, node, seed)
		})
	}
}

var reversePieces = []string{
	"a", "b", "c", "x", "y", "z", " ", " ", "\n", ".", "é", "中", "ß",
	"😀", "👍🏽", "🇫🇷", "𝔘", "🎉", "👩‍👩‍👧", "e\u0301",
}

func reverseString(rng *rand.Rand) string {
	n := 1
	switch r := rng.IntN(10); {
	case r < 2:
		n = 2 + rng.IntN(6)
	case r < 3:
		n = 10 + rng.IntN(20)
	}
	var b strings.Builder
	for range n {
		b.WriteString(reversePieces[rng.IntN(len(reversePieces))])
	}
	return b.String()
}

func runReverse(t *testing.T, root, node string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	clients := [][]uint64{
		{1, 2, 3},
		{7, 1 << 32, 1<<53 - 1},
		{1<<53 - 2, 1<<53 - 1, 42, 1<<31 - 1},
		{rng.Uint64() >> 11, rng.Uint64() >> 11, rng.Uint64() >> 11},
	}[seed%4]
	docs := make([]*crdt.Doc, len(clients))
	applied := make([]map[int]bool, len(clients)) // edit events each peer has
	for i, c := range clients {
		docs[i] = crdt.NewDoc(crdt.Options{ClientID: c})
		applied[i] = map[int]bool{}
	}
	script := reverseScript{Clients: clients}
	goUpdates := map[int][]byte{}

	apply := func(p int, events []int) {
		if len(events) == 0 {
			return
		}
		for _, e := range events {
			if _, err := docs[p].ApplyUpdate(goUpdates[e]); err != nil {
				t.Fatalf("peer %d applying the update of event %d: %v", p, e, err)
			}
			applied[p][e] = true
		}
		script.Events = append(script.Events, reverseEvent{Peer: p, Apply: events})
	}
	missing := func(p int) []int {
		var out []int
		for e := range script.Events {
			if _, ok := goUpdates[e]; ok && !applied[p][e] {
				out = append(out, e)
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}

	for range 80 {
		p := rng.IntN(len(docs))
		if rng.IntN(10) < 3 {
			m := missing(p)
			apply(p, m[:rng.IntN(len(m)+1)])
			continue
		}
		text := docs[p].GetText("content")
		var ops [][]any
		changed, err := docs[p].Transact(func(tx *crdt.Transaction) error {
			for range 1 + rng.IntN(3) {
				l := text.Len()
				if l > 0 && rng.IntN(10) < 4 {
					pos := rng.IntN(l)
					n := 1 + rng.IntN(min(l-pos, 4))
					if rng.IntN(8) == 0 {
						n = 1 + rng.IntN(l-pos)
					}
					ops = append(ops, []any{"d", pos, n})
					if err := text.Delete(tx, pos, n); err != nil {
						return fmt.Errorf("delete(%d, %d) of %d: %w", pos, n, l, err)
					}
				} else {
					pos, s := rng.IntN(l+1), reverseString(rng)
					ops = append(ops, []any{"i", pos, s})
					if err := text.Insert(tx, pos, s); err != nil {
						return fmt.Errorf("insert(%d, %q) into %d: %w", pos, s, l, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("peer %d: %v", p, err)
		}
		e := len(script.Events)
		script.Events = append(script.Events, reverseEvent{Peer: p, Ops: ops, Update: base64.StdEncoding.EncodeToString(changed)})
		if changed != nil {
			goUpdates[e] = changed
			applied[p][e] = true
		}
	}
	for p := range docs {
		apply(p, missing(p))
	}
	want := docs[0].GetText("content").String()
	for p := range docs {
		if got := docs[p].GetText("content").String(); got != want {
			t.Fatalf("Go peers diverged: peer %d vs peer 0\n%s", p, diffText(got, want))
		}
	}

	res := runApplyScript(t, root, node, &script)

	for e, ev := range script.Events {
		if ev.Ops == nil {
			continue
		}
		yu, err := base64.StdEncoding.DecodeString(res.Updates[e])
		if err != nil {
			t.Fatalf("apply.mjs output: %v", err)
		}
		if !bytes.Equal(goUpdates[e], yu) {
			t.Fatalf("event %d (peer %d, ops %v): the transaction's update differs from Yjs's\n%s", e, ev.Peer, ev.Ops, diffBytes(goUpdates[e], yu))
		}
	}
	for p, d := range docs {
		compareWithYjs(t, fmt.Sprintf("peer %d", p), d, res.Peers[p])
	}
	replay := crdt.NewDoc(crdt.Options{})
	for e := range script.Events {
		if u, ok := goUpdates[e]; ok {
			if _, err := replay.ApplyUpdate(u); err != nil {
				t.Fatalf("fresh doc applying the update of event %d: %v", e, err)
			}
		}
	}
	compareWithYjs(t, "fresh doc fed the Go updates", replay, res.Replay)
	if replay.HasPending() != res.Replay.Pending {
		t.Fatalf("fresh doc: HasPending() = %v, Yjs pending = %v", replay.HasPending(), res.Replay.Pending)
	}
}

func compareWithYjs(t *testing.T, who string, d *crdt.Doc, y yjsDocState) {
	t.Helper()
	if got := d.GetText("content").String(); got != y.Text {
		t.Fatalf("%s: text differs from Yjs's\n%s", who, diffText(got, y.Text))
	}
	sv, _ := base64.StdEncoding.DecodeString(y.StateVector)
	if got := d.EncodeStateVector(); !bytes.Equal(got, sv) {
		t.Fatalf("%s: state vector differs\n go:  %s\n yjs: %s", who, describeSV(got), describeSV(sv))
	}
	st, _ := base64.StdEncoding.DecodeString(y.State)
	got, err := d.EncodeStateAsUpdate(nil)
	if err != nil {
		t.Fatalf("%s: EncodeStateAsUpdate: %v", who, err)
	}
	if !bytes.Equal(got, st) {
		t.Fatalf("%s: encoded state differs from Yjs's\n%s", who, diffBytes(got, st))
	}
}

func runApplyScript(t *testing.T, root, node string, script *reverseScript) *reverseResult {
	t.Helper()
	raw, err := json.Marshal(script)
	if err != nil {
		t.Fatalf("encoding the script: %v", err)
	}
	file := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatalf("writing the script: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("crdt", "oracle", "apply.mjs"), file)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node apply.mjs failed (%v): %s", err, stderr.String())
		}
		t.Fatalf("running node apply.mjs: %v", err)
	}
	res := new(reverseResult)
	if err := json.Unmarshal(stdout.Bytes(), res); err != nil {
		t.Fatalf("decoding apply.mjs output: %v\n%s", err, stdout.String())
	}
	if len(res.Updates) != len(script.Events) || len(res.Peers) != len(script.Clients) {
		t.Fatalf("apply.mjs output has %d updates and %d peers, want %d and %d", len(res.Updates), len(res.Peers), len(script.Events), len(script.Clients))
	}
	return res
}
