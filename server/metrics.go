package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quirehq/quire/protocol"
)

// Metrics are the Prometheus metrics of one Server, in a registry of their
// own (embedders keep theirs clean). Create them before the Store when the
// store's commits should be measured: pass ObserveCommit as the SQLite
// store's OnCommit hook, then the Metrics in Config.Metrics.
type Metrics struct {
	reg *prometheus.Registry

	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	closes           *prometheus.CounterVec
	messagesIn       [4]prometheus.Counter // by protocol.Type
	updatesIn        prometheus.Counter
	bytesIn          prometheus.Counter
	messagesOut      prometheus.Counter
	bytesOut         prometheus.Counter
	commitBatch      prometheus.Histogram
	commitBytes      prometheus.Counter
	commitSeconds    prometheus.Histogram
}

// NewMetrics returns the metrics of one Server, with the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "quire_websocket_connections", Help: "Open WebSocket connections."})
	m.connectionsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_websocket_connections_total", Help: "WebSocket connections accepted."})
	m.closes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quire_websocket_closes_total", Help: "Connections the server closed, by close code."}, []string{"code"})
	in := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quire_messages_received_total", Help: "y-protocols messages received, by type."}, []string{"type"})
	for t := range m.messagesIn {
		m.messagesIn[t] = in.WithLabelValues(protocol.Type(t).String())
	}
	m.updatesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_updates_received_total", Help: "Yjs updates received (sync step 2 and update messages, HTTP POSTs)."})
	m.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_received_bytes_total", Help: "Bytes of WebSocket messages received."})
	m.messagesOut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_messages_sent_total", Help: "WebSocket messages sent."})
	m.bytesOut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_sent_bytes_total", Help: "Bytes of WebSocket messages sent."})
	m.commitBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "quire_commit_batch_size", Help: "Appends carried by one group commit of the store.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}})
	m.commitBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quire_commit_bytes_total", Help: "Bytes committed by the store."})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "quire_commit_duration_seconds", Help: "Duration of one group commit of the store.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14)})
	f(m.connections)
	f(m.connectionsTotal)
	f(m.closes)
	f(in)
	f(m.updatesIn)
	f(m.bytesIn)
	f(m.messagesOut)
	f(m.bytesOut)
	f(m.commitBatch)
	f(m.commitBytes)
	f(m.commitSeconds)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit records one group commit of the store: how many appends it
// carried, their bytes and how long it took. Its signature is the SQLite
// store's OnCommit hook.
func (m *Metrics) ObserveCommit(batch int, bytes int64, d time.Duration) {
	m.commitBatch.Observe(float64(batch))
	m.commitBytes.Add(float64(bytes))
	m.commitSeconds.Observe(d.Seconds())
}

// Registry is the Prometheus registry the metrics live in, for embedders that
// add their own collectors or serve them elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
