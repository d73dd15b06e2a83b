package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Error keys besides HTTP status codes.
const (
	ErrorTransport   = "transport"    // no HTTP answer (connection refused, timeout)
	ErrorInvalidBody = "invalid_body" // a 2xx answer that did not decode
	ErrorMailTimeout = "mail_timeout" // the code email did not arrive in time
	ErrorNoCode      = "no_code"      // an email arrived without a code
)

// Report is the result of a run.
type Report struct {
	RunID       string           `json:"runId"`
	Target      string           `json:"target"`
	Concurrency int              `json:"concurrency"`
	Users       int              `json:"users"`
	Setup       PhaseReport      `json:"setup"`
	Scenarios   []ScenarioReport `json:"scenarios"`
	// MailDropped counts emails the listener threw away (to no address of this run, or a full box).
	MailDropped uint64 `json:"mailDropped"`
}

// PhaseReport is the setup: creating the users.
type PhaseReport struct {
	Seconds   float64          `json:"seconds"`
	Endpoints []EndpointReport `json:"endpoints"`
}

// ScenarioReport is one measured scenario.
type ScenarioReport struct {
	Scenario    Scenario         `json:"scenario"`
	Concurrency int              `json:"concurrency"`
	Seconds     float64          `json:"seconds"` // measured wall time, until the last worker stopped
	Endpoints   []EndpointReport `json:"endpoints"`
	// CodeDelivery is the time from login's 200 answer to the code email's arrival; absent when no
	// login ran.
	CodeDelivery *DeliveryReport `json:"codeDelivery,omitempty"`
}

// EndpointReport is what one endpoint did.
type EndpointReport struct {
	Endpoint string            `json:"endpoint"`
	Requests uint64            `json:"requests"` // answered requests, errors included
	RPS      float64           `json:"rps"`
	Errors   map[string]uint64 `json:"errors"` // by status code or Error* key; empty when none
	Latency  LatencyReport     `json:"latency"`
}

// DeliveryReport is the code emails' delay; 0 means the email arrived before the answer was read.
type DeliveryReport struct {
	Emails  uint64            `json:"emails"`
	Errors  map[string]uint64 `json:"errors"`
	Latency LatencyReport     `json:"latency"`
}

// LatencyReport holds quantiles in milliseconds.
type LatencyReport struct {
	P50  float64 `json:"p50Ms"`
	P90  float64 `json:"p90Ms"`
	P99  float64 `json:"p99Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

// ErrorCount is the number of failed requests.
func (e EndpointReport) ErrorCount() uint64 {
	var n uint64
	for _, c := range e.Errors {
		n += c
	}
	return n
}

func latencyOf(h *Histogram) LatencyReport {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return LatencyReport{P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// endpointStats is one worker's record of one endpoint (merged after the phase, so never shared).
type endpointStats struct {
	latency  Histogram // every answered request, failed ones too
	requests uint64
	errors   map[string]uint64
}

// stats is one worker's record of a phase.
type stats struct {
	endpoints map[string]*endpointStats
	delivery  Histogram
	mailErrs  map[string]uint64
}

func newStats() *stats {
	return &stats{endpoints: make(map[string]*endpointStats), mailErrs: make(map[string]uint64)}
}

func (s *stats) endpoint(name string) *endpointStats {
	e := s.endpoints[name]
	if e == nil {
		e = &endpointStats{errors: make(map[string]uint64)}
		s.endpoints[name] = e
	}
	return e
}

// request records an answered request, or a request that got no answer.
func (s *stats) request(name string, status int, took time.Duration, err error) {
	e := s.endpoint(name)
	e.requests++
	e.latency.Record(took)
	switch {
	case status == 0:
		e.errors[ErrorTransport]++
	case status < 200 || status > 299:
		e.errors[strconv.Itoa(status)]++
	case err != nil:
		e.errors[ErrorInvalidBody]++
	}
}

func (s *stats) merge(o *stats) {
	for name, oe := range o.endpoints {
		e := s.endpoint(name)
		e.requests += oe.requests
		e.latency.Merge(&oe.latency)
		for k, v := range oe.errors {
			e.errors[k] += v
		}
	}
	s.delivery.Merge(&o.delivery)
	for k, v := range o.mailErrs {
		s.mailErrs[k] += v
	}
}

func (s *stats) endpointReports(elapsed time.Duration) []EndpointReport {
	var out []EndpointReport
	for _, name := range endpointOrder {
		e := s.endpoints[name]
		if e == nil {
			continue
		}
		r := EndpointReport{Endpoint: name, Requests: e.requests, Errors: maps.Clone(e.errors), Latency: latencyOf(&e.latency)}
		if elapsed > 0 {
			r.RPS = float64(e.requests) / elapsed.Seconds()
		}
		out = append(out, r)
	}
	return out
}

func (s *stats) deliveryReport() *DeliveryReport {
	if s.delivery.Count() == 0 && len(s.mailErrs) == 0 {
		return nil
	}
	return &DeliveryReport{Emails: s.delivery.Count(), Errors: maps.Clone(s.mailErrs), Latency: latencyOf(&s.delivery)}
}

// WriteText prints the report as aligned tables.
func (r Report) WriteText(w io.Writer) error {
	const deliveryLabel = "code email delay*"
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run %s against %s: %d users, setup %.1fs\n", r.RunID, r.Target, r.Users, r.Setup.Seconds)
	for _, sc := range r.Scenarios {
		width := len("endpoint")
		for _, e := range sc.Endpoints {
			width = max(width, len(e.Endpoint))
		}
		if sc.CodeDelivery != nil {
			width = max(width, len(deliveryLabel))
		}
		// Padding the first cell keeps names left-aligned while the figures align right.
		label := func(s string) string { return fmt.Sprintf("%-*s", width, s) }
		fmt.Fprintf(tw, "\nscenario %s, %d clients, %.1fs\n", sc.Scenario, sc.Concurrency, sc.Seconds)
		fmt.Fprintf(tw, "%s\treq/s\trequests\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t\n", label("endpoint"))
		for _, e := range sc.Endpoints {
			fmt.Fprintf(tw, "%s\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", label(e.Endpoint), e.RPS, e.Requests,
				e.Latency.P50, e.Latency.P90, e.Latency.P99, e.Latency.Max, formatErrors(e.Errors))
		}
		if d := sc.CodeDelivery; d != nil {
			fmt.Fprintf(tw, "%s\t\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", label(deliveryLabel), d.Emails,
				d.Latency.P50, d.Latency.P90, d.Latency.P99, d.Latency.Max, formatErrors(d.Errors))
			fmt.Fprintln(tw, "* from login's 200 answer to the email's arrival at the generator's SMTP listener")
		}
	}
	if r.MailDropped > 0 {
		fmt.Fprintf(tw, "\n%d email(s) dropped (to no address of this run)\n", r.MailDropped)
	}
	return tw.Flush()
}

func formatErrors(errs map[string]uint64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}
