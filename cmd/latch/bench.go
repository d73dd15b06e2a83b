package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/latch-auth/latch/internal/loadgen"
)

func lookupEnv(k string) string { return os.Getenv(k) }

const benchHelp = `Drives a running Latch on this machine and prints requests/s and p50/p90/p99/max latency per
endpoint, with errors by status, and for logins the time from login's answer to the code email.

It runs its own SMTP listener on --smtp-addr: start the server under test with
  LATCH_MAIL_DRIVER=smtp LATCH_MAIL_SMTP_HOST=127.0.0.1 LATCH_MAIL_SMTP_PORT=2525 LATCH_MAIL_SMTP_TLS=none
and, so that the generator is not throttled, LATCH_RATELIMIT_IP_PER_MINUTE=0. The login scenario
logs each user in over and over: also set LATCH_CODES_RESEND_COOLDOWN=0s and
LATCH_CODES_MAX_PER_HOUR=1000000, or give --users >= concurrency * ceil(duration / 60s) and stay
under 10 logins per user per hour.

Setup creates --users accounts (bench-<run id>-<n>@example.test) through register and
validate-register, reading each code from the email. Then each scenario runs for --warmup
(unmeasured), then for --duration at --concurrency:
  login    login + validate-login
  refresh  each client refreshes its own session; each answer's refresh token is the next input
  me       GET /v2/auth/me with a Bearer token
  verify   POST /v2/auth/verify
  mixed    me 50%, verify 25%, refresh 20%, login 5%
  all      each of the above in turn
Only loopback targets are accepted.`

// benchOptions are the parsed flags of latch bench.
type benchOptions struct {
	cfg      loadgen.Config
	smtpAddr string
	json     bool
	out      string
}

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	fs := subFlags("bench [flags]", benchHelp, stderr)
	target := fs.String("target", "http://127.0.0.1:10952", "base URL of the Latch under test (loopback only)")
	smtpAddr := fs.String("smtp-addr", "127.0.0.1:2525", "where the generator's SMTP listener receives the code emails (loopback only)")
	scenario := fs.String("scenario", "all", "login | refresh | me | verify | mixed | all, or a comma-separated list")
	duration := fs.Duration("duration", 20*time.Second, "measured time of each scenario (at most 10m)")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured time before each scenario")
	concurrency := fs.Int("concurrency", 16, "clients sending at once")
	users := fs.Int("users", 0, "accounts to create (0 = --concurrency); at least --concurrency")
	password := fs.String("password", "", "password of the bench accounts (default: LATCH_BENCH_PASSWORD, else a fixed one)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	out := fs.String("out", "", "also write the JSON report to this file")
	if err := fs.Parse(args); err != nil {
		return benchOptions{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return benchOptions{}, usageError(fmt.Sprintf("bench: unexpected argument %q", fs.Arg(0)))
	}
	scenarios, err := loadgen.ParseScenarios(*scenario)
	if err != nil {
		return benchOptions{}, usageError(err.Error())
	}
	pw := *password
	if pw == "" {
		pw = lookupEnv("LATCH_BENCH_PASSWORD")
	}
	if pw == "" {
		pw = "bench-correct-horse-battery"
	}
	o := benchOptions{
		cfg: loadgen.Config{Target: *target, Scenarios: scenarios, Duration: *duration, Warmup: *warmup,
			Concurrency: *concurrency, Users: *users, Password: pw, Progress: stderr},
		smtpAddr: *smtpAddr, json: *asJSON, out: *out,
	}
	return o, o.cfg.Validate()
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	mb, err := loadgen.ListenSMTP(o.smtpAddr)
	if err != nil {
		return fmt.Errorf("--smtp-addr: %w", err)
	}
	defer mb.Close()
	return runBench(ctx, o, mb, stdout)
}

// runBench runs the generator with a listener already started (tests start it first, on a free
// port, to configure the server under test with it). The report is printed even when the run was
// cut short.
func runBench(ctx context.Context, o benchOptions, mb *loadgen.Mailbox, stdout io.Writer) error {
	rep, runErr := loadgen.Run(ctx, o.cfg, mb)
	if o.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var err error
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if runErr != nil {
		return runErr
	}
	return err
}
