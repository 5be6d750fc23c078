package persist

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// crashChildEnv, when set (to a database path), turns the test binary into
// the crash test's child: see crashChild.
const crashChildEnv = "QUIRE_PERSIST_CRASH_CHILD"

const (
	crashDocs         = 4  // docs (one writer goroutine each) in the child
	crashCompactEvery = 16 // the child compacts each doc every this many appends
	crashAcks         = 600
)

func crashUpdate(doc string, seq int64) []byte { return []byte(fmt.Sprintf("%s#%d", doc, seq)) }
func crashSnapshot(doc string, seq int64) []byte {
	return []byte(fmt.Sprintf("snapshot of %s through %d", doc, seq))
}

// crashChild appends to crashDocs docs from as many goroutines, forever,
// compacting now and then, and prints "append DOC SEQ" after each Append
// returned and "compact DOC SEQ" after each Compact returned. It runs until
// the parent kills it.
func crashChild(path string) int {
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		out.Lock()
		defer out.Unlock()
		// One write(2) per line, unbuffered: what the parent reads was said
		// after the call returned, and nothing said is lost with the process.
		if _, err := os.Stdout.WriteString(line); err != nil {
			os.Exit(3)
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for d := range crashDocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := fmt.Sprintf("doc-%d", d)
			for seq := int64(1); ; seq++ {
				res, err := s.Append(ctx, doc, crashUpdate(doc, seq))
				if err != nil || res.Seq != seq {
					say("error %s %d: %+v %v", doc, seq, res, err)
					return
				}
				say("append %s %d", doc, seq)
				if seq%crashCompactEvery == 0 {
					if err := s.Compact(ctx, doc, crashSnapshot(doc, seq-2), seq-2); err != nil {
						say("error compact %s %d: %v", doc, seq, err)
						return
					}
					say("compact %s %d", doc, seq-2)
				}
			}
		}()
	}
	wg.Wait()
	return 2
}

// TestCrashDurability kills (SIGKILL) a process that is appending and
// compacting, then reopens its database: every append it acknowledged is
// there, every compaction it acknowledged is there, each document is exactly
// a snapshot plus the contiguous log after it, and the file is intact.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	acked := map[string]int64{}     // highest acknowledged append per doc
	compacted := map[string]int64{} // highest acknowledged compaction per doc
	sc := bufio.NewScanner(stdout)
	n := 0
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || (f[0] != "append" && f[0] != "compact") {
			t.Errorf("child: %s", sc.Text())
			continue
		}
		seq, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child line %q: %v", sc.Text(), err)
		}
		if f[0] == "append" {
			acked[f[1]] = max(acked[f[1]], seq)
			n++
		} else {
			compacted[f[1]] = max(compacted[f[1]], seq)
		}
		if n == crashAcks && !killed {
			// Kill mid-flight, then read what it said before dying.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before %d appends: %v\n%s", crashAcks, err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}

	s := openTestSQLite(t, path, SQLiteOptions{})
	var integrity string
	if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v", integrity, err)
	}
	for d := range crashDocs {
		doc := fmt.Sprintf("doc-%d", d)
		l := mustLoad(t, s, doc)
		var through int64
		if l.Snapshot != nil {
			if _, err := fmt.Sscanf(string(l.Snapshot), "snapshot of "+doc+" through %d", &through); err != nil {
				t.Fatalf("%s: snapshot %q: %v", doc, l.Snapshot, err)
			}
		}
		if through < compacted[doc] {
			t.Errorf("%s: snapshot through %d, but compaction through %d was acknowledged", doc, through, compacted[doc])
		}
		if l.LastSeq < acked[doc] {
			t.Errorf("%s: LastSeq %d, but append %d was acknowledged", doc, l.LastSeq, acked[doc])
		}
		if want := l.LastSeq - through; int64(len(l.Updates)) != want {
			t.Errorf("%s: %d log rows after the snapshot through %d, LastSeq %d", doc, len(l.Updates), through, l.LastSeq)
			continue
		}
		var bytesStored int64 = int64(len(l.Snapshot))
		for i, u := range l.Updates {
			if want := crashUpdate(doc, through+1+int64(i)); !bytes.Equal(u, want) {
				t.Errorf("%s: row %d = %q, want %q", doc, i, u, want)
			}
			bytesStored += int64(len(u))
		}
		// The counters of the docs row were repaired from the log.
		if m := mustGet(t, s, doc); m.LogLen != len(l.Updates) || m.Bytes != bytesStored {
			t.Errorf("%s: GetDoc says %d rows, %d bytes; the store holds %d rows, %d bytes", doc, m.LogLen, m.Bytes, len(l.Updates), bytesStored)
		}
		if r := mustAppend(t, s, doc, crashUpdate(doc, l.LastSeq+1)); r.Seq != l.LastSeq+1 || r.LogLen != len(l.Updates)+1 {
			t.Errorf("%s: Append after the crash = %+v, want seq %d, %d rows", doc, r, l.LastSeq+1, len(l.Updates)+1)
		}
		t.Logf("%s: %d acknowledged, %d stored (snapshot through %d + %d rows)", doc, acked[doc], l.LastSeq, through, len(l.Updates))
	}
}
