package httpapi

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus series Latch exports on /metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
	// Throttled counts refusals by kind (ip, account).
	Throttled *prometheus.CounterVec
	// MailSent counts outbox deliveries by result; MailDelay is the time from queueing to handing to SMTP.
	MailSent  *prometheus.CounterVec
	MailDelay prometheus.Histogram
	// HashWait is how long password hashes waited for a slot of the bounded hasher.
	HashWait prometheus.Histogram
}

// OutboxGauge reports the outbox backlog: unsent messages and the age of the oldest.
type OutboxGauge func(ctx context.Context) (pending int64, oldest time.Duration, err error)

// NewMetrics registers every series. db may be nil (no pool stats), outbox too.
func NewMetrics(db *sql.DB, outbox OutboxGauge) *Metrics {
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
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_throttled_total",
			Help: "Requests refused by a throttle, by kind (ip, account)."}, []string{"kind"}),
		MailSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_mail_sends_total",
			Help: "Outbox send attempts by result (sent, failed)."}, []string{"result"}),
		MailDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_mail_delivery_delay_seconds",
			Help: "Time from queueing an email to handing it to the mail server.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120}}),
		HashWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_password_hash_wait_seconds",
			Help: "Time a password hash waited for a slot of the bounded hasher.", Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
	}
	reg.MustRegister(m.requests, m.latency, m.outcomes, m.Throttled, m.MailSent, m.MailDelay, m.HashWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(db, "latch"))
	}
	if outbox != nil {
		pending := prometheus.NewDesc("latch_outbox_pending", "Unsent, still useful outbox messages.", nil, nil)
		oldest := prometheus.NewDesc("latch_outbox_oldest_age_seconds", "Age of the oldest unsent outbox message.", nil, nil)
		reg.MustRegister(&outboxCollector{gauge: outbox, pending: pending, oldest: oldest})
	}
	return m
}

type outboxCollector struct {
	gauge           OutboxGauge
	pending, oldest *prometheus.Desc
}

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- o.pending; ch <- o.oldest }

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, age, err := o.gauge(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(o.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(o.oldest, prometheus.GaugeValue, age.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// operations names the auth routes whose outcomes are counted.
var operations = map[string]string{
	"/v2/auth/register": "register", "/v2/auth/validate-register": "validate_register",
	"/v2/auth/login": "login", "/v2/auth/validate-login": "validate_login", "/v2/auth/refresh": "refresh",
	"/v2/auth/logout": "logout", "/v2/auth/password/forgot": "password_forgot",
	"/v2/auth/password/reset": "password_reset", "/v2/auth/password/change": "password_change",
}

func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		outcome := "ok"
		if err != nil {
			p, _, ok := problemFor(err)
			status, outcome = http.StatusInternalServerError, codeInternal
			if ok {
				status, outcome = p.Status, p.Code
			}
			if outcome == "login_throttled" {
				m.Throttled.WithLabelValues("account").Inc()
			}
		}
		method := c.Request().Method
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		if op, ok := operations[route]; ok {
			m.outcomes.WithLabelValues(op, outcome).Inc()
		}
		return err
	}
}
