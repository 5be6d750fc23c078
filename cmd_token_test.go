package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/auth"
)

const tokenTestSecret = "0123456789abcdef0123456789abcdef"

// tokenRun runs `quire token` through the dispatcher with QUIRE_AUTH_SECRET
// set to env ("" unsets it for the run).
func tokenRun(t *testing.T, env string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv(auth.EnvSecret, env)
	return run(append([]string{"token"}, args...)...)
}

func TestTokenRoundTrip(t *testing.T) {
	a, err := auth.New([]byte(tokenTestSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		doc  string
		want auth.Access
		err  error
	}
	tests := []struct {
		name   string
		env    string
		args   []string
		ttl    time.Duration
		checks []check
	}{
		{"one doc read-write, secret from env", tokenTestSecret, []string{"--doc", "notes"}, time.Hour, []check{
			{"notes", auth.ReadWrite, nil}, {"other", auth.NoAccess, auth.ErrWrongDoc},
		}},
		{"read-only, secret from flag", "", []string{"--doc", "notes", "--read-only", "--auth-secret", tokenTestSecret}, time.Hour, []check{
			{"notes", auth.ReadOnly, nil},
		}},
		{"flag wins over env", "some other secret", []string{"--auth-secret=" + tokenTestSecret, "--doc=notes"}, time.Hour, []check{
			{"notes", auth.ReadWrite, nil},
		}},
		{"two docs and a prefix, ttl", tokenTestSecret, []string{"--doc", "a", "--doc", "b", "--prefix", "team-", "--ttl", "90m"}, 90 * time.Minute, []check{
			{"a", auth.ReadWrite, nil}, {"b", auth.ReadWrite, nil}, {"team-x", auth.ReadWrite, nil}, {"c", auth.NoAccess, auth.ErrWrongDoc},
		}},
		{"every document", tokenTestSecret, []string{"--prefix", "", "--read-only"}, time.Hour, []check{
			{"anything", auth.ReadOnly, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			code, out, errs := tokenRun(t, tt.env, tt.args...)
			after := time.Now()
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if errs != "" {
				t.Errorf("stderr %q", errs)
			}
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("stdout is not one line: %q", out)
			}
			tok := strings.TrimSuffix(out, "\n")
			for _, c := range tt.checks {
				got, err := a.Verify(tok, c.doc)
				if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
					t.Errorf("Verify(%s) = %v, %v; want %v, %v", c.doc, got, err, c.want, c.err)
				}
			}
			g, err := a.Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			// exp has whole seconds: allow the second it was truncated to.
			if g.Expires.Before(before.Add(tt.ttl).Add(-time.Second)) || g.Expires.After(after.Add(tt.ttl)) {
				t.Errorf("expires %s, want %s after %s", g.Expires, tt.ttl, before)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		code int
	}{
		{"no secret", "", []string{"--doc", "notes"}, 1},
		{"bad doc ID", tokenTestSecret, []string{"--doc", "a b"}, 1},
		{"zero ttl", tokenTestSecret, []string{"--doc", "notes", "--ttl", "0s"}, 1},
		{"no doc", tokenTestSecret, []string{"--read-only"}, 2},
		{"stray argument", tokenTestSecret, []string{"--doc", "notes", "extra"}, 2},
		{"unknown flag", tokenTestSecret, []string{"--doc", "notes", "--admin"}, 2},
		{"bad ttl", tokenTestSecret, []string{"--doc", "notes", "--ttl", "soon"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := tokenRun(t, tt.env, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q on error", out)
			}
			if tt.code == 1 && (strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 || !strings.HasPrefix(errs, "quire token: ")) {
				t.Errorf("want one line of error, got %q", errs)
			}
		})
	}
}

func TestTokenWeakSecretWarns(t *testing.T) {
	code, out, errs := tokenRun(t, "short", "--doc", "notes")
	if code != 0 || out == "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errs, "warning") {
		t.Errorf("no warning for a 5-byte secret: %q", errs)
	}
	a, _ := auth.New([]byte("short"), nil)
	if _, err := a.Verify(strings.TrimSpace(out), "notes"); err != nil {
		t.Fatal(err)
	}
}
