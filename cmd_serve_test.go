package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseServe(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(serveConfig) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c serveConfig) bool {
			return c.listen == "127.0.0.1:8080" && c.db == "./data/quire.db" && c.roomIdle == 30*time.Second &&
				c.limits.MaxMessageBytes == 16<<20 && c.logFormat == "text"
		}, ""},
		{"environment", map[string]string{"QUIRE_LISTEN": "127.0.0.1:0", "QUIRE_DB": "/tmp/x.db", "QUIRE_ROOM_IDLE": "2s", "QUIRE_READ_LIMIT": "1024"}, nil,
			func(c serveConfig) bool {
				return c.listen == "127.0.0.1:0" && c.db == "/tmp/x.db" && c.roomIdle == 2*time.Second && c.limits.MaxMessageBytes == 1024
			}, ""},
		{"flags win over the environment", map[string]string{"QUIRE_LISTEN": "127.0.0.1:1"}, []string{"--listen", "127.0.0.1:2", "--read-limit", "99"},
			func(c serveConfig) bool { return c.listen == "127.0.0.1:2" && c.limits.MaxMessageBytes == 99 }, ""},
		{"read limit and max message bytes are one setting", nil, []string{"--max-message-bytes", "77"},
			func(c serveConfig) bool { return c.limits.MaxMessageBytes == 77 }, ""},
		{"bad duration in the environment", map[string]string{"QUIRE_ROOM_IDLE": "soon"}, nil, nil, "QUIRE_ROOM_IDLE"},
		{"stray argument", nil, []string{"extra"}, nil, "unexpected argument"},
		{"invalid limits", nil, []string{"--updates-per-second", "5", "--update-burst", "0"}, nil, "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			c, err := parseServe(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("listening", "addr", "127.0.0.1:1")
	if !strings.Contains(b.String(), `"addr":"127.0.0.1:1"`) {
		t.Fatalf("json log %q", b.String())
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := newLogger(&b, bad[0], bad[1]); err == nil {
			t.Fatalf("newLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestServeExitCodes(t *testing.T) {
	if code, _, errs := run("serve", "--log-level", "loud", "--db", t.TempDir()+"/q.db"); code != 2 || !strings.Contains(errs, "log-level") {
		t.Fatalf("bad log level: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := run("serve", "--help"); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	if code, _, errs := run("serve", "--listen", "256.0.0.1:99999", "--db", t.TempDir()+"/q.db", "--log-level", "error"); code != 1 || !strings.Contains(errs, "listen") {
		t.Fatalf("bad address: exit %d, stderr %q", code, errs)
	}
}

func TestParseServeGCPercent(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string // "" unsets
		args    []string
		want    int
		wantErr bool
	}{
		{"default", map[string]string{"GOGC": "", "QUIRE_GC_PERCENT": ""}, nil, defaultGCPercent, false},
		{"GOGC is the default", map[string]string{"GOGC": "200", "QUIRE_GC_PERCENT": ""}, nil, 200, false},
		{"QUIRE_GC_PERCENT over GOGC", map[string]string{"GOGC": "200", "QUIRE_GC_PERCENT": "30"}, nil, 30, false},
		{"the flag over both", map[string]string{"GOGC": "200", "QUIRE_GC_PERCENT": "30"}, []string{"--gc-percent", "off"}, -1, false},
		{"not a percentage", map[string]string{"GOGC": ""}, []string{"--gc-percent", "-5"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v) // restored after the test
				if v == "" {
					os.Unsetenv(k)
				}
			}
			c, err := parseServe(tt.args, io.Discard)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "--gc-percent") {
					t.Fatalf("err = %v, want one about --gc-percent", err)
				}
				return
			}
			if err != nil || c.gcPercent != tt.want {
				t.Fatalf("gcPercent = %d, %v; want %d", c.gcPercent, err, tt.want)
			}
		})
	}
}
