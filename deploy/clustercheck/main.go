// Command clustercheck drives the local multi-instance cluster (deploy/local-cluster.sh) to check
// what must hold across Latch instances, and to put refresh load on it during a failover
// (deploy/failover-test.sh). It only talks to loopback addresses.
//
//	go run ./deploy/clustercheck exactly-once   50 refreshes of one token, one code, the resend cooldown
//	go run ./deploy/clustercheck chains         refresh chains through HAProxy; prints outcomes by status
//
// Both run their own SMTP sink on -smtp (the cluster's mail.smtp.port) to read the code emails.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the optional -db cross-check
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clustercheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "exactly-once" && args[0] != "chains") {
		return errors.New("usage: clustercheck exactly-once | chains [flags] (-h for the flags)")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	target := fs.String("target", "http://127.0.0.1:10960", "the balancer in front of the instances")
	instances := fs.String("instances", "http://127.0.0.1:10961,http://127.0.0.1:10962,http://127.0.0.1:10963", "each instance, comma-separated (exactly-once spreads requests over them)")
	smtpAddr := fs.String("smtp", "127.0.0.1:10925", "where the instances send code emails")
	dbURL := fs.String("db", "", "optional Postgres URL of the cluster's latch database, to count rows too")
	n := fs.Int("n", 50, "exactly-once: concurrent copies of each request")
	clients := fs.Int("clients", 32, "chains: simulated clients, each with its own session")
	duration := fs.Duration("duration", 40*time.Second, "chains: length of the load phase")
	retry := fs.Duration("retry-every", 250*time.Millisecond, "chains: delay before retrying a failed refresh")
	recover := fs.Duration("recover", 60*time.Second, "chains: how long to wait for the cluster after the load phase")
	after := fs.Int("after", 3, "chains: refreshes per surviving chain after recovery")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout")
	jsonOut := fs.String("out", "", "chains: also write the report as JSON here")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	mb, err := listenSink(*smtpAddr)
	if err != nil {
		return err
	}
	defer mb.Close()
	var db *sql.DB
	if *dbURL != "" {
		if db, err = sql.Open("pgx", *dbURL); err != nil {
			return err
		}
		defer db.Close()
	}
	b := make([]byte, 4)
	rand.Read(b)
	runID := hex.EncodeToString(b)

	if args[0] == "chains" {
		base, err := checkLoopbackURL(*target)
		if err != nil {
			return err
		}
		rep, err := runChains(ctx, newAPI(base, 2**clients, *timeout), mb, chainsConfig{Clients: *clients, Duration: *duration,
			RetryEvery: *retry, Recover: *recover, After: *after, Out: *jsonOut}, runID, out)
		if err != nil {
			return err
		}
		rep.write(out)
		if rep.LostAcknowledged > 0 || rep.Stuck > 0 {
			return fmt.Errorf("%d acknowledged rotation(s) lost, %d chain(s) stuck", rep.LostAcknowledged, rep.Stuck)
		}
		return nil
	}

	c := &checker{mb: mb, db: db, out: out, runID: runID}
	for _, raw := range strings.Split(*instances, ",") {
		base, err := checkLoopbackURL(strings.TrimSpace(raw))
		if err != nil {
			return err
		}
		c.instances = append(c.instances, newAPI(base, *n, *timeout))
	}
	return c.all(ctx, *n)
}

// all runs every exactly-once check and fails if any did.
func (c *checker) all(ctx context.Context, n int) error {
	for _, check := range []func(context.Context, int) error{c.refreshOnce, c.codeOnce, c.cooldownOnce} {
		if err := check(ctx, n); err != nil {
			return err
		}
	}
	if c.failed {
		return errCheck
	}
	return nil
}
