// Package metrics holds the Prometheus series Latch exports on /metrics. The wiring creates one
// Metrics and hands it to the parts that observe: the HTTP layer, the outbox worker, the hasher.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the series; the zero value is not usable, build one with New.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	outcomes  *prometheus.CounterVec
	throttled *prometheus.CounterVec
	mailSent  *prometheus.CounterVec
	mailDelay prometheus.Histogram
	hashWait  prometheus.Histogram
	webhooks  *prometheus.CounterVec
}

// OutboxGauge reports the outbox backlog: unsent messages, the age of the oldest, and the dead ones
// (refused for good by the mail server).
type OutboxGauge func(ctx context.Context) (pending int64, oldest time.Duration, dead int64, err error)

// New registers every series. db may be nil (no pool stats), outbox too.
func New(db *sql.DB, outbox OutboxGauge) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_http_requests_total",
			Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latch_http_request_duration_seconds",
			Help: "HTTP request latency by route and method.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"route", "method"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_auth_outcomes_total",
			Help: "Outcomes of auth operations (register, login, validate, refresh, ...) by catalogue code; ok on success. refresh_token_reused counts reuse detections."},
			[]string{"operation", "outcome"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_throttled_total",
			Help: "Requests refused by a throttle, by kind (ip, account)."}, []string{"kind"}),
		mailSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_mail_sends_total",
			Help: "Outbox send attempts by result: sent, failed (to be retried), dead (refused for good, not retried)."}, []string{"result"}),
		mailDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_mail_delivery_delay_seconds",
			Help: "Time from queueing an email to handing it to the mail server.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120}}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_webhook_deliveries_total",
			Help: "Webhook delivery attempts by endpoint and result: delivered, failed (to be retried), dead (not retried)."},
			[]string{"endpoint", "result"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_password_hash_wait_seconds",
			Help: "Time a password hash waited for a slot of the bounded hasher.", Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
	}
	reg.MustRegister(m.requests, m.latency, m.outcomes, m.throttled, m.mailSent, m.mailDelay, m.hashWait, m.webhooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(db, "latch"))
	}
	if outbox != nil {
		pending := prometheus.NewDesc("latch_outbox_pending", "Unsent, still useful outbox messages.", nil, nil)
		oldest := prometheus.NewDesc("latch_outbox_oldest_age_seconds", "Age of the oldest unsent outbox message.", nil, nil)
		dead := prometheus.NewDesc("latch_outbox_dead", "Outbox messages the mail server refused for good, kept for the retention period (latch outbox list --dead).", nil, nil)
		reg.MustRegister(&outboxCollector{gauge: outbox, pending: pending, oldest: oldest, dead: dead})
	}
	return m
}

// WebhookGauge reports the webhook backlog, like OutboxGauge.
type WebhookGauge func(ctx context.Context) (pending int64, oldest time.Duration, dead int64, err error)

// Webhooks exports the webhook backlog: pending deliveries, the age of the oldest, the dead ones.
func (m *Metrics) Webhooks(gauge WebhookGauge) {
	m.reg.MustRegister(&outboxCollector{gauge: OutboxGauge(gauge),
		pending: prometheus.NewDesc("latch_webhook_pending", "Webhook deliveries waiting, in flight or to be retried.", nil, nil),
		oldest:  prometheus.NewDesc("latch_webhook_oldest_pending_age_seconds", "Age of the oldest webhook delivery not yet delivered or dead.", nil, nil),
		dead:    prometheus.NewDesc("latch_webhook_dead", "Webhook deliveries out of attempts, kept for retention.events (GET /v2/admin/webhooks/deliveries?status=dead).", nil, nil)})
}

// WebhookDelivery counts a webhook attempt by endpoint and result (delivered, failed, dead).
func (m *Metrics) WebhookDelivery(endpoint, result string) {
	m.webhooks.WithLabelValues(endpoint, result).Inc()
}

// CountBatches exports the groups a store's batcher of one kind (rotate, user) ran and the calls they
// held, read when scraped: calls / groups is the mean group size.
func (m *Metrics) CountBatches(kind string, groups, calls func() int64) {
	labels := prometheus.Labels{"kind": kind}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latch_db_batches_total", ConstLabels: labels,
			Help: "Groups of concurrent requests sent to the database as one statement (database.batch_max), by kind."},
			func() float64 { return float64(groups()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latch_db_batched_calls_total", ConstLabels: labels,
			Help: "Requests those groups held, by kind; divided by latch_db_batches_total, the mean group size."},
			func() float64 { return float64(calls()) }))
}

type outboxCollector struct {
	gauge                 OutboxGauge
	pending, oldest, dead *prometheus.Desc
}

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.pending
	ch <- o.oldest
	ch <- o.dead
}

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, age, dead, err := o.gauge(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(o.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(o.oldest, prometheus.GaugeValue, age.Seconds())
	ch <- prometheus.MustNewConstMetric(o.dead, prometheus.GaugeValue, float64(dead))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts one HTTP request and its latency.
func (m *Metrics) Request(route, method string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(took.Seconds())
}

// Outcome counts the result of an auth operation: "ok" or the catalogue code.
func (m *Metrics) Outcome(operation, outcome string) {
	m.outcomes.WithLabelValues(operation, outcome).Inc()
}

// Throttled counts a refusal by a throttle of the kind (ip, account).
func (m *Metrics) Throttled(kind string) { m.throttled.WithLabelValues(kind).Inc() }

// MailSend counts an outbox send by its result (sent, failed, dead); a delivered one also records how
// long after queueing it left.
func (m *Metrics) MailSend(result string, sinceQueued time.Duration) {
	m.mailSent.WithLabelValues(result).Inc()
	if result == "sent" {
		m.mailDelay.Observe(sinceQueued.Seconds())
	}
}

// HashWait records how long a password hash waited for a slot.
func (m *Metrics) HashWait(d time.Duration) { m.hashWait.Observe(d.Seconds()) }
