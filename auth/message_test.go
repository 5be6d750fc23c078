package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPermissionDeniedMatchesYProtocols compares with bytes written by
// y-protocols itself: testdata/permission-denied.txt holds lines
// "reason-hex message-hex" produced with lib0's encoder,
//
//	encoding.writeVarUint(enc, 2); auth.writePermissionDenied(enc, reason)
//
// for a short reason and for a 200-byte one (a two-byte length).
func TestPermissionDeniedMatchesYProtocols(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "permission-denied.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		t.Fatalf("only %d golden lines", len(lines))
	}
	for _, line := range lines {
		reasonHex, msgHex, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		reason, err1 := hex.DecodeString(reasonHex)
		want, err2 := hex.DecodeString(msgHex)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad hex in %q", line)
		}
		if got := AppendPermissionDenied(nil, string(reason)); !bytes.Equal(got, want) {
			t.Errorf("reason %q:\n got %x\nwant %x", reason, got, want)
		}
	}
}

func TestTokenMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"a", "eyJhbGciOiJIUzI1NiJ9.e30.sig", strings.Repeat("x", 200), strings.Repeat("y", MaxTokenBytes)} {
		msg := AppendTokenMessage([]byte{0xAA}, tok)
		if msg[0] != 0xAA || msg[1] != MessageAuth {
			t.Fatalf("prefix lost or wrong type: %x", msg[:2])
		}
		got, err := ParseTokenMessage(msg[2:])
		if err != nil || got != tok {
			t.Fatalf("round trip of a %d-byte token: %q, %v", len(tok), got, err)
		}
	}
}

func TestParseTokenMessageErrors(t *testing.T) {
	t.Parallel()
	long := AppendTokenMessage(nil, strings.Repeat("z", MaxTokenBytes+1))[1:]
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"empty", nil, ErrMalformed},
		{"unknown kind", []byte{1, 1, 'a'}, ErrMalformed},
		{"no length", []byte{0}, ErrMalformed},
		{"truncated length", []byte{0, 0x80}, ErrMalformed},
		{"truncated token", []byte{0, 5, 'a', 'b'}, ErrMalformed},
		{"trailing bytes", []byte{0, 1, 'a', 'b'}, ErrMalformed},
		{"huge length, few bytes", []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, ErrMalformed},
		{"varUint too long", []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"kind past 2^53", []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10}, ErrMalformed},
		{"over the limit", long, ErrMalformed},
		{"not UTF-8", []byte{0, 2, 0xff, 0xfe}, ErrMalformed},
		{"empty token", []byte{0, 0}, ErrNoToken},
	}
	for _, tt := range tests {
		if _, err := ParseTokenMessage(tt.payload); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	// A non-canonical zero (0x80 0x00) is still 0 to lib0, and to us.
	if got, err := ParseTokenMessage([]byte{0x80, 0x00, 1, 't'}); err != nil || got != "t" {
		t.Errorf("non-canonical kind: %q %v", got, err)
	}
}

// FuzzParseTokenMessage: never panics, and whatever it accepts re-encodes to
// the same bytes when the kind was written canonically.
func FuzzParseTokenMessage(f *testing.F) {
	f.Add(AppendTokenMessage(nil, "eyJhbGciOiJIUzI1NiJ9.e30.sig")[1:])
	f.Add([]byte{0, 0x80})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	data, err := os.ReadFile(filepath.Join("testdata", "permission-denied.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		_, msgHex, _ := strings.Cut(line, " ")
		if msg, err := hex.DecodeString(msgHex); err == nil && len(msg) > 1 {
			f.Add(msg[1:]) // same layout in the other direction
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok, err := ParseTokenMessage(payload)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *Error", err)
			}
			return
		}
		if len(tok) == 0 || len(tok) > MaxTokenBytes {
			t.Fatalf("accepted a %d-byte token", len(tok))
		}
		if payload[0] == 0 {
			if re := AppendTokenMessage(nil, tok)[1:]; !bytes.Equal(re, payload) && payloadCanonical(payload) {
				t.Fatalf("re-encoding differs: %x vs %x", re, payload)
			}
		}
	})
}

// payloadCanonical reports whether the length varUint after the kind byte is
// minimal (lib0 writes it so; readers accept padding).
func payloadCanonical(p []byte) bool {
	_, n, err := readVarUint(p[1:])
	return err == nil && len(appendVarUint(nil, uint64(len(p)-1-n))) == n
}
