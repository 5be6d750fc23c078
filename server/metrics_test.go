package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/persist"
)

func TestMetricsText(t *testing.T) {
	m := NewMetrics()
	m.ObserveCommit(3, 120, 150*time.Microsecond)
	m.closed(1009)
	m.closed(1009)
	m.messagesIn[0].Inc()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		"# TYPE quire_commit_duration_seconds histogram\n",
		`quire_commit_duration_seconds_bucket{le="0.0002"} 1` + "\n",
		`quire_commit_duration_seconds_bucket{le="0.0001"} 0` + "\n",
		`quire_commit_batch_size_bucket{le="4"} 1` + "\n",
		"quire_commit_bytes_total 120\n",
		`quire_websocket_closes_total{code="1009"} 2` + "\n",
		`quire_messages_received_total{type="sync"} 1` + "\n",
		"# TYPE quire_websocket_connections gauge\n",
		"\ngo_goroutines ",
		"\nprocess_resident_memory_bytes ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// One Metrics serves one Server: a second is refused, not mixed in.
func TestMetricsOneServer(t *testing.T) {
	m := NewMetrics()
	cfg := Config{Store: persist.NewMemory(), Logger: slog.New(slog.DiscardHandler), Metrics: m, DisableEditor: true}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if b, err := New(cfg); err == nil {
		b.Close(context.Background())
		t.Fatal("a second Server on the same Metrics was accepted")
	}
}
