package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/latch-auth/latch/cmd/latch-bench/internal/loadgen"
	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/logging"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// syncBuffer collects the instance's log from its many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLatch starts a real Latch instance on a fresh database of the dialect, configured as the help
// text tells an operator to (mail to the generator's listener, no per-IP bucket, no resend cooldown),
// with argon2 made cheap so that sign-ups do not dominate a short test. It returns the base URL.
func startLatch(t *testing.T, d store.Dialect, mb *loadgen.Mailbox) string {
	t.Helper()
	cfg := config.Default()
	cfg.Database.URL = storetest.URL(t, d)
	cfg.Database.MaxOpenConns = 8
	cfg.Mail.Driver = "smtp"
	cfg.Mail.SMTP.Host, cfg.Mail.SMTP.Port, cfg.Mail.SMTP.TLS = "127.0.0.1", mb.Port(), "none"
	cfg.Mail.SMTP.ConnectTimeout, cfg.Mail.SMTP.SendTimeout = 2*time.Second, 5*time.Second
	cfg.Password.Argon2Memory, cfg.Password.Argon2Iterations = 1024, 1
	cfg.RateLimit.IPPerMinute = 0
	cfg.Codes.ResendCooldown, cfg.Codes.MaxPerHour = 0, 1_000_000
	cfg.Secrets.EncryptionKey = "v1:latch-bench test key-encryption key, not a secret"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &syncBuffer{}
	a, err := app.New(context.Background(), cfg, logging.New(logs, "json", "warn"), time.Now)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.RunBackground(ctx)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wait()
		a.Close()
		if t.Failed() {
			t.Logf("instance log:\n%s", logs.String())
		}
	})
	return srv.URL
}

func listen(t *testing.T) *loadgen.Mailbox {
	t.Helper()
	mb, err := loadgen.ListenSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	return mb
}

// TestScenariosAgainstRealInstance runs every scenario briefly against a real instance on Postgres
// whose mail goes to the generator's own SMTP listener. It asserts no speed, only that each scenario
// works end to end: requests made, none failed, every login's code received, and the --out file
// holding the report that --json printed.
func TestScenariosAgainstRealInstance(t *testing.T) {
	mb := listen(t)
	target := startLatch(t, store.Postgres, mb)
	outFile := filepath.Join(t.TempDir(), "report.json")
	o, err := parseFlags([]string{"--target", target, "--scenario", "all", "--duration", "1s",
		"--warmup", "0s", "--concurrency", "2", "--users", "3", "--json", "--out", outFile}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := bench(context.Background(), o, mb, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out.String())
	}
	saved, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile loadgen.Report
	if err := json.Unmarshal(saved, &fromFile); err != nil {
		t.Fatalf("--out file does not parse: %v\n%s", err, saved)
	}
	if diff := cmp.Diff(rep, fromFile); diff != "" {
		t.Errorf("--out file differs from the printed report (-printed +file):\n%s", diff)
	}

	var ran []loadgen.Scenario
	for _, sc := range rep.Scenarios {
		ran = append(ran, sc.Scenario)
	}
	if diff := cmp.Diff(loadgen.Scenarios, ran); diff != "" {
		t.Fatalf("scenarios run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]uint64{loadgen.EndpointRegister: 3, loadgen.EndpointValidateRegister: 3}, requests(rep.Setup.Endpoints)); diff != "" {
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
			if diff := cmp.Diff(map[string]uint64{}, e.Errors, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s/%s: errors (-want +got):\n%s", sc.Scenario, e.Endpoint, diff)
			}
		}
		if want, ok := wantEndpoints[sc.Scenario]; ok {
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("%s endpoints (-want +got):\n%s", sc.Scenario, diff)
			}
		}
		if sc.Scenario == loadgen.ScenarioLogin {
			logins := requests(sc.Endpoints)[loadgen.EndpointLogin]
			if sc.CodeDelivery == nil || sc.CodeDelivery.Emails != logins || len(sc.CodeDelivery.Errors) != 0 {
				t.Errorf("login: code delivery %+v for %d logins", sc.CodeDelivery, logins)
			}
		}
	}
	if rep.MailDropped != 0 {
		t.Errorf("%d emails dropped", rep.MailDropped)
	}
}

func requests(endpoints []loadgen.EndpointReport) map[string]uint64 {
	got := make(map[string]uint64)
	for _, e := range endpoints {
		got[e.Endpoint] = e.Requests
	}
	return got
}

// TestTextReport checks that the human output names each scenario and endpoint it measured, here on
// SQLite, the embedded default.
func TestTextReport(t *testing.T) {
	mb := listen(t)
	target := startLatch(t, store.SQLite, mb)
	o, err := parseFlags([]string{"--target", target, "--scenario", "me,verify", "--duration", "200ms",
		"--warmup", "0s", "--concurrency", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := bench(context.Background(), o, mb, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var missing []string
	for _, want := range []string{"scenario me, 1 clients", "scenario verify, 1 clients", "p99 ms"} {
		if !strings.Contains(out.String(), want) {
			missing = append(missing, want)
		}
	}
	rows := make(map[string]bool)
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = true
		}
	}
	for _, endpoint := range []string{loadgen.EndpointMe, loadgen.EndpointVerify} {
		if !rows[endpoint] {
			missing = append(missing, "a row for "+endpoint)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("report lacks (-want +got):\n%s\nreport:\n%s", diff, out.String())
	}
}

// TestReportWhenCutShort checks that an interrupted run still prints and saves what it has, and says
// why it stopped.
func TestReportWhenCutShort(t *testing.T) {
	mb := listen(t)
	outFile := filepath.Join(t.TempDir(), "report.json")
	o, err := parseFlags([]string{"--target", "http://127.0.0.1:1", "--concurrency", "1", "--json", "--out", outFile}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	if err := bench(ctx, o, mb, &out); !errors.Is(err, context.Canceled) {
		t.Fatalf("bench on a cancelled context = %v, want context.Canceled", err)
	}
	var printed, saved loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &printed); err != nil {
		t.Fatalf("printed report does not parse: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatalf("saved report does not parse: %v\n%s", err, b)
	}
	want := loadgen.Report{RunID: printed.RunID, Target: "http://127.0.0.1:1", Concurrency: 1, Users: 1}
	if diff := cmp.Diff(want, printed, cmpopts.IgnoreFields(loadgen.Report{}, "Setup")); diff != "" {
		t.Errorf("printed report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(printed, saved); diff != "" {
		t.Errorf("saved report differs from the printed one (-printed +saved):\n%s", diff)
	}
}

func TestParseFlags(t *testing.T) {
	defaults := options{
		cfg: loadgen.Config{Target: "http://127.0.0.1:10952", Scenarios: loadgen.Scenarios, Duration: 20 * time.Second,
			Warmup: 2 * time.Second, Concurrency: 16, Password: "bench-correct-horse-battery"},
		smtpAddr: "127.0.0.1:2525",
	}
	tests := []struct {
		name string
		args []string
		env  string // LATCH_BENCH_PASSWORD
		want func(o *options)
	}{
		{name: "defaults", want: func(*options) {}},
		{
			name: "every flag",
			args: []string{"--target", "http://[::1]:8080/latch", "--smtp-addr", "localhost:2526", "--scenario", "refresh, me",
				"--duration", "90s", "--warmup", "0s", "--concurrency", "64", "--users", "128", "--password", "pw-from-flag",
				"--json", "--out", "/tmp/r.json"},
			env: "pw-from-env",
			want: func(o *options) {
				o.cfg.Target, o.cfg.Scenarios = "http://[::1]:8080/latch", []loadgen.Scenario{loadgen.ScenarioRefresh, loadgen.ScenarioMe}
				o.cfg.Duration, o.cfg.Warmup, o.cfg.Concurrency, o.cfg.Users = 90*time.Second, 0, 64, 128
				o.cfg.Password, o.smtpAddr, o.json, o.out = "pw-from-flag", "localhost:2526", true, "/tmp/r.json"
			},
		},
		{
			name: "password from the environment",
			env:  "pw-from-env",
			want: func(o *options) { o.cfg.Password = "pw-from-env" },
		},
		{
			name: "all among others runs every scenario again",
			args: []string{"--scenario", "login,all"},
			want: func(o *options) {
				o.cfg.Scenarios = append([]loadgen.Scenario{loadgen.ScenarioLogin}, loadgen.Scenarios...)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LATCH_BENCH_PASSWORD", tt.env)
			var stderr bytes.Buffer
			got, err := parseFlags(tt.args, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if got.cfg.Progress != io.Writer(&stderr) {
				t.Errorf("progress goes to %v, want stderr", got.cfg.Progress)
			}
			want := defaults
			want.cfg.Scenarios = append([]loadgen.Scenario(nil), defaults.cfg.Scenarios...)
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(options{}), cmpopts.IgnoreFields(loadgen.Config{}, "Progress")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"--target", "http://10.1.2.3:10952"},
		{"--target", "http://example.com"},
		{"--target", "http://0.0.0.0:10952"},
		{"--target", "http://[2001:db8::1]:10952"},
		{"--smtp-addr", "0.0.0.0:0"},
		{"--smtp-addr", ":0"},
		{"--smtp-addr", "192.0.2.1:2525"},
	} {
		err := run(context.Background(), append([]string{"--duration", "1s"}, args...), io.Discard, io.Discard)
		if !errors.Is(err, loadgen.ErrNotLoopback) {
			t.Errorf("latch-bench %v = %v, want ErrNotLoopback", args, err)
		}
		if got := exitCode(err); got != 1 {
			t.Errorf("latch-bench %v exits %d, want 1", args, got)
		}
	}
}

func TestRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "11m"},
		{"--duration", "0s"},
		{"--warmup", "-1s"},
		{"--concurrency", "0"},
		{"--concurrency", "4", "--users", "3"},
		{"--target", "ftp://127.0.0.1/"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); !errors.Is(err, loadgen.ErrInvalidConfig) {
			t.Errorf("latch-bench %v = %v, want ErrInvalidConfig", args, err)
		}
	}
	for _, args := range [][]string{
		{"--scenario", "nap"},
		{"--scenario", "me,"},
		{"refresh"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("latch-bench %v = %v, want a usage error", args, err)
		}
		if got := exitCode(err); got != 2 {
			t.Errorf("latch-bench %v exits %d, want 2", args, got)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help = %v, want flag.ErrHelp", err)
	}
	if got := exitCode(err); got != 0 {
		t.Errorf("--help exits %d, want 0", got)
	}
	var missing []string
	for _, want := range []string{"Usage: latch-bench [flags]", "LATCH_RATELIMIT_IP_PER_MINUTE=0", "LATCH_CODES_RESEND_COOLDOWN=0s",
		"-target", "-smtp-addr", "-scenario", "-duration", "-warmup", "-concurrency", "-users", "-password", "-json", "-out"} {
		if !strings.Contains(stderr.String(), want) {
			missing = append(missing, want)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("help lacks (-want +got):\n%s\nhelp:\n%s", diff, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("--help wrote to stdout: %q", stdout.String())
	}
}

// TestLinkedPackages guards the point of this command being separate: the service binary must not
// link the generator, and the generator binary must not link "testing" (which is why the MIME
// decoder it shares with the tests' SMTP server lives outside mailtest).
func TestLinkedPackages(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH to list dependencies with: %v", err)
	}
	deps := func(pkg string) map[string]bool {
		cmd := exec.Command(goBin, "list", "-deps", pkg)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		set := make(map[string]bool)
		for _, p := range strings.Fields(string(out)) {
			set[p] = true
		}
		return set
	}
	const (
		service   = "github.com/latch-auth/latch/cmd/latch"
		generator = "github.com/latch-auth/latch/cmd/latch-bench"
		loadgenP  = generator + "/internal/loadgen"
		mimecodeP = "github.com/latch-auth/latch/internal/mail/mimecode"
	)
	svc, gen := deps(service), deps(generator)
	got := map[string]bool{
		"service links loadgen":    svc[loadgenP],
		"service links testing":    svc["testing"],
		"generator links loadgen":  gen[loadgenP],
		"generator links mimecode": gen[mimecodeP],
		"generator links testing":  gen["testing"],
		"generator links mailtest": gen["github.com/latch-auth/latch/internal/mail/mailtest"],
	}
	want := map[string]bool{
		"service links loadgen":    false,
		"service links testing":    false,
		"generator links loadgen":  true,
		"generator links mimecode": true,
		"generator links testing":  false,
		"generator links mailtest": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("linked packages (-want +got):\n%s", diff)
	}
}
