package limits

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c != DefaultConfig() {
		t.Fatalf("defaults changed by registering: %+v", c)
	}
	err := fs.Parse([]string{
		"--max-message-bytes", "1024", "--updates-per-second", "2.5", "--update-burst", "7",
		"--max-conns-per-ip", "3", "--max-doc-bytes", "4096", "--limit-loopback",
		"--penalty-base", "0", "--penalty-max", "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.MaxMessageBytes, want.UpdatesPerSecond, want.UpdateBurst = 1024, 2.5, 7
	want.MaxConnsPerIP, want.MaxDocBytes, want.LimitLoopback = 3, 4096, true
	want.Penalty.Base, want.Penalty.Max = 0, time.Minute
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
