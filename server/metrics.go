package server

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/quirehq/quire/protocol"
)

// Metrics are the Prometheus metrics of one Server, in a set of their own
// (embedders keep theirs clean). Create them before the Store when the
// store's commits should be measured: pass ObserveCommit as the SQLite
// store's OnCommit hook, then the Metrics in Config.Metrics.
//
// They are kept with VictoriaMetrics' metrics package, which writes the
// Prometheus text format without the official client's protocol-buffer
// machinery: that was 2 MB of the binary's resident pages and half a
// megabyte of heap, a twelfth of the server with 2,000 connections.
type Metrics struct {
	set *metrics.Set

	connections      *metrics.Gauge
	connectionsTotal *metrics.Counter
	messagesIn       [4]*metrics.Counter // by protocol.Type
	updatesIn        *metrics.Counter
	bytesIn          *metrics.Counter
	messagesOut      *metrics.Counter
	bytesOut         *metrics.Counter
	commitBatch      *metrics.PrometheusHistogram
	commitBytes      *metrics.Counter
	commitSeconds    *metrics.PrometheusHistogram
}

// NewMetrics returns the metrics of one Server; its handler adds the Go
// runtime's and the process's.
func NewMetrics() *Metrics {
	// # TYPE lines: scrapers then know the histograms and counters for
	// what they are. A setting of the package, for every set it writes.
	metrics.ExposeMetadata(true)
	s := metrics.NewSet()
	m := &Metrics{
		set:              s,
		connections:      s.NewGauge(`quire_websocket_connections`, nil),
		connectionsTotal: s.NewCounter(`quire_websocket_connections_total`),
		updatesIn:        s.NewCounter(`quire_updates_received_total`),
		bytesIn:          s.NewCounter(`quire_received_bytes_total`),
		messagesOut:      s.NewCounter(`quire_messages_sent_total`),
		bytesOut:         s.NewCounter(`quire_sent_bytes_total`),
		commitBatch: s.NewPrometheusHistogramExt(`quire_commit_batch_size`,
			[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256}),
		commitBytes: s.NewCounter(`quire_commit_bytes_total`),
		commitSeconds: s.NewPrometheusHistogramExt(`quire_commit_duration_seconds`,
			metrics.ExponentialBuckets(25e-6, 2, 14)),
	}
	for t := range m.messagesIn {
		m.messagesIn[t] = s.NewCounter(`quire_messages_received_total{type="` + protocol.Type(t).String() + `"}`)
	}
	return m
}

// closed counts a connection the server closed with code.
func (m *Metrics) closed(code int) {
	m.set.GetOrCreateCounter(`quire_websocket_closes_total{code="` + strconv.Itoa(code) + `"}`).Inc()
}

// ObserveCommit records one group commit of the store: how many appends it
// carried, their bytes and how long it took. Its signature is the SQLite
// store's OnCommit hook.
func (m *Metrics) ObserveCommit(batch int, bytes int64, d time.Duration) {
	m.commitBatch.Update(float64(batch))
	m.commitBytes.AddInt64(bytes)
	m.commitSeconds.Update(d.Seconds())
}

// Set is the set the metrics live in, for embedders that add their own.
func (m *Metrics) Set() *metrics.Set { return m.set }

// WritePrometheus writes the metrics, the Go runtime's and the process's
// in the Prometheus text format, as GET /metrics serves them.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

func (m *Metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(w)
	})
}
