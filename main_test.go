package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tracesDir finds ../shared/traces beside the module root.
func tracesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "shared", "traces")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("traces not found at %s: %v", dir, err)
		}
		t.Skipf("traces not found at %s", dir)
	}
	return dir
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectText(t *testing.T) {
	dir := tracesDir(t)
	for _, name := range []string{"S1", "A1"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "yjs", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "yjs", name+".v1.yjs")
			for _, args := range [][]string{
				{"inspect", file, "--root", "text"},
				{"inspect", "--root", "text", file},
				{"inspect", "--root=text", file},
			} {
				code, out, errs := run(args...)
				if code != 0 {
					t.Fatalf("%v: exit %d, stderr %q", args, code, errs)
				}
				if out != string(want) {
					t.Fatalf("%v: text differs from %s.txt (got %d bytes, want %d)", args, name, len(out), len(want))
				}
			}
		})
	}
}

func TestInspectDefaultRootIsContent(t *testing.T) {
	// A document whose text lives in `content`, as the editor names it.
	// testdata/hello-content.v1.yjs was written by Yjs 13.6: a Doc with
	// clientID 42 inserts "hello world" into getText("content"), deletes
	// "world" and inserts "quire"; then Y.encodeStateAsUpdate(doc).
	code, out, errs := run("inspect", filepath.Join("testdata", "hello-content.v1.yjs"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out != "hello quire" {
		t.Fatalf("got %q, want %q", out, "hello quire")
	}
}

func TestInspectJSON(t *testing.T) {
	dir := tracesDir(t)
	file := filepath.Join(dir, "yjs", "S1.v1.yjs")
	code, out, errs := run("inspect", file, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum struct {
		StateVector  map[string]uint64 `json:"state_vector"`
		Structs      int               `json:"structs"`
		DeletedItems int               `json:"deleted_items"`
		Bytes        int               `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	info, _ := os.Stat(file)
	if sum.Bytes != int(info.Size()) {
		t.Errorf("bytes = %d, want %d", sum.Bytes, info.Size())
	}
	if len(sum.StateVector) == 0 || sum.Structs == 0 || sum.DeletedItems == 0 {
		t.Errorf("implausible summary: %+v", sum)
	}
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.yjs")
	os.WriteFile(garbage, []byte{0x05, 0xff, 0xff, 0xff}, 0o644)
	truncated := filepath.Join(dir, "truncated.yjs")
	full, err := os.ReadFile(filepath.Join("testdata", "hello-content.v1.yjs"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"garbage", []string{"inspect", garbage}, 1},
		{"garbage json", []string{"inspect", garbage, "--json"}, 1},
		{"truncated", []string{"inspect", truncated}, 1},
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.yjs")}, 1},
		{"no file", []string{"inspect"}, 2},
		{"two files", []string{"inspect", garbage, truncated}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if out != "" {
				t.Errorf("stdout should be empty on error, got %q", out)
			}
			if tt.code == 1 && strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 {
				t.Errorf("error should be one line, got %q", errs)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, _ := run("frobnicate"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
