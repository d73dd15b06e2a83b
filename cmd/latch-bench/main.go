// Command latch-bench is Latch's load generator (SPEC §10): it drives a running Latch on this machine
// through the real flows, receiving the code emails on its own SMTP listener, and reports requests/s
// and latency per endpoint. It is a separate binary so that the service never ships it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latch-auth/latch/cmd/latch-bench/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "latch-bench:", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a command line that makes no sense; it exits with status 2.
type usageError string

func (u usageError) Error() string { return string(u) }

const help = `Drives a running Latch on this machine and prints requests/s and p50/p90/p99/max latency per
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

// options are the parsed flags.
type options struct {
	cfg      loadgen.Config
	smtpAddr string
	json     bool
	out      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("latch-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: latch-bench [flags]\n\n%s\n", help)
		fs.PrintDefaults()
	}
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
		return options{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return options{}, usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	scenarios, err := loadgen.ParseScenarios(*scenario)
	if err != nil {
		return options{}, usageError(err.Error())
	}
	pw := *password
	if pw == "" {
		// From the environment, so that a chosen password need not show in the process list.
		pw = os.Getenv("LATCH_BENCH_PASSWORD")
	}
	if pw == "" {
		pw = "bench-correct-horse-battery"
	}
	o := options{
		cfg: loadgen.Config{Target: *target, Scenarios: scenarios, Duration: *duration, Warmup: *warmup,
			Concurrency: *concurrency, Users: *users, Password: pw, Progress: stderr},
		smtpAddr: *smtpAddr, json: *asJSON, out: *out,
	}
	return o, o.cfg.Validate()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	mb, err := loadgen.ListenSMTP(o.smtpAddr)
	if err != nil {
		return fmt.Errorf("--smtp-addr: %w", err)
	}
	defer mb.Close()
	return bench(ctx, o, mb, stdout)
}

// bench runs the generator with a listener already started: the tests start it first, on a free
// port, to point the server under test at it. The report is printed, and written to --out, even
// when the run was cut short, so that an interrupted run still shows what it measured.
func bench(ctx context.Context, o options, mb *loadgen.Mailbox, stdout io.Writer) error {
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
