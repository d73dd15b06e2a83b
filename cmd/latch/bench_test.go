package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/loadgen"
	"github.com/latch-auth/latch/internal/store"
)

// TestBenchScenariosAgainstRealInstance runs every scenario of the generator briefly against a real
// instance whose mail goes to the generator's own SMTP listener. It asserts no speed, only that each
// scenario works end to end: requests made, none failed, every login's code received.
func TestBenchScenariosAgainstRealInstance(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		t.Parallel()
		mb, err := loadgen.ListenSMTP("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mb.Close() })
		h := apptest.New(t, d, func(c *config.Config) {
			c.Mail.SMTP.Host, c.Mail.SMTP.Port = "127.0.0.1", mb.Port()
			// Each user logs in many times a second; the harness clock stands still, so every code
			// counts against the same hour.
			c.Codes.ResendCooldown, c.Codes.MaxPerHour = 0, 1_000_000
		})
		o, err := parseBenchFlags([]string{"--target", h.URL, "--scenario", "all", "--duration", "1s",
			"--warmup", "0s", "--concurrency", "2", "--users", "3", "--json"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := runBench(context.Background(), o, mb, &out); err != nil {
			t.Fatalf("bench: %v\n%s", err, out.String())
		}
		var rep loadgen.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, out.String())
		}

		var ran []loadgen.Scenario
		for _, sc := range rep.Scenarios {
			ran = append(ran, sc.Scenario)
		}
		if diff := cmp.Diff(loadgen.Scenarios, ran); diff != "" {
			t.Fatalf("scenarios run (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]uint64{loadgen.EndpointRegister: 3, loadgen.EndpointValidateRegister: 3}, benchRequests(rep.Setup.Endpoints)); diff != "" {
			t.Errorf("setup requests (-want +got):\n%s", diff)
		}
		wantEndpoints := map[loadgen.Scenario][]string{
			loadgen.ScenarioLogin:   {loadgen.EndpointLogin, loadgen.EndpointValidateLogin},
			loadgen.ScenarioRefresh: {loadgen.EndpointRefresh},
			loadgen.ScenarioMe:      {loadgen.EndpointMe},
			loadgen.ScenarioVerify:  {loadgen.EndpointVerify},
		}
		for _, sc := range rep.Scenarios {
			if len(sc.Endpoints) == 0 {
				t.Errorf("%s: no requests", sc.Scenario)
			}
			var names []string
			for _, e := range sc.Endpoints {
				names = append(names, e.Endpoint)
				if e.Requests == 0 || e.RPS <= 0 || e.Latency.P50 <= 0 || e.Latency.Max < e.Latency.P99 {
					t.Errorf("%s/%s: implausible figures %+v", sc.Scenario, e.Endpoint, e)
				}
				if len(e.Errors) != 0 {
					t.Errorf("%s/%s: errors %v", sc.Scenario, e.Endpoint, e.Errors)
				}
			}
			if want, ok := wantEndpoints[sc.Scenario]; ok {
				if diff := cmp.Diff(want, names); diff != "" {
					t.Errorf("%s endpoints (-want +got):\n%s", sc.Scenario, diff)
				}
			}
			if sc.Scenario == loadgen.ScenarioLogin {
				logins := benchRequests(sc.Endpoints)[loadgen.EndpointLogin]
				if sc.CodeDelivery == nil || sc.CodeDelivery.Emails != logins || len(sc.CodeDelivery.Errors) != 0 {
					t.Errorf("login: code delivery %+v for %d logins", sc.CodeDelivery, logins)
				}
			}
		}
		if rep.MailDropped != 0 {
			t.Errorf("%d emails dropped", rep.MailDropped)
		}
	})
}

func benchRequests(endpoints []loadgen.EndpointReport) map[string]uint64 {
	got := make(map[string]uint64)
	for _, e := range endpoints {
		got[e.Endpoint] = e.Requests
	}
	return got
}

// TestBenchTextReport checks the human output names each endpoint it measured.
func TestBenchTextReport(t *testing.T) {
	mb, err := loadgen.ListenSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	h := apptest.New(t, store.SQLite, func(c *config.Config) {
		c.Mail.SMTP.Host, c.Mail.SMTP.Port = "127.0.0.1", mb.Port()
	})
	o, err := parseBenchFlags([]string{"--target", h.URL, "--scenario", "me,verify", "--duration", "200ms",
		"--warmup", "0s", "--concurrency", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runBench(context.Background(), o, mb, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	for _, want := range []string{"scenario me, 1 clients", "scenario verify, 1 clients", "p99 ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"--target", "http://10.1.2.3:10952"},
		{"--target", "http://example.com"},
		{"--target", "http://0.0.0.0:10952"},
		{"--target", "http://[2001:db8::1]:10952"},
		{"--smtp-addr", "0.0.0.0:0"},
		{"--smtp-addr", ":0"},
	} {
		err := run(context.Background(), append([]string{"bench", "--duration", "1s"}, args...), io.Discard, io.Discard)
		if !errors.Is(err, loadgen.ErrNotLoopback) {
			t.Errorf("latch bench %v = %v, want ErrNotLoopback", args, err)
		}
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "11m"},
		{"--duration", "0s"},
		{"--concurrency", "0"},
		{"--concurrency", "4", "--users", "3"},
	} {
		err := run(context.Background(), append([]string{"bench"}, args...), io.Discard, io.Discard)
		if !errors.Is(err, loadgen.ErrInvalidConfig) {
			t.Errorf("latch bench %v = %v, want ErrInvalidConfig", args, err)
		}
	}
	var u usageError
	if err := run(context.Background(), []string{"bench", "--scenario", "nap"}, io.Discard, io.Discard); !errors.As(err, &u) {
		t.Errorf("unknown scenario = %v, want a usage error", err)
	}
}
