package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runLatch runs the latch command line as an operator would, returning its output and error.
func runLatch(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestCommandLineHelpAndVersion(t *testing.T) {
	stdout, _, err := runLatch(t, "version")
	if err != nil || stdout != "latch "+version+"\n" {
		t.Errorf("latch version: err %v, output %q", err, stdout)
	}
	_, _, err = runLatch(t, "frobnicate")
	var u usageError
	if !errors.As(err, &u) || exitCode(err) != 2 {
		t.Errorf("an unknown command: err %v, exit %d; want a usage error, exit 2", err, exitCode(err))
	}
	stdout, stderr, err := runLatch(t)
	if exitCode(err) != 2 || stdout != "" || !strings.Contains(stderr, "Usage") {
		t.Errorf("latch with no command: exit %d, stdout %q, stderr %q; want usage on stderr and exit 2", exitCode(err), stdout, stderr)
	}
}

// TestHelpGoesToStdoutAndRunsNothing: every way of asking for help prints usage to stdout and exits
// 0, and does nothing else: the database named by the configuration is never even created.
func TestHelpGoesToStdoutAndRunsNothing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "untouched.db")
	t.Setenv("LATCH_DATABASE_URL", "sqlite://"+db)
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"--config", "config.yaml", "--help"},
		{"serve", "--help"}, {"migrate", "-h"}, {"migrate", "up", "--help"}, {"migrate", "status", "--help"},
		{"keys", "--help"}, {"keys", "rotate", "--help"}, {"user", "--help"}, {"user", "create", "--help"},
		{"user", "disable", "--email", "a@example.test", "-h"}, {"healthcheck", "--help"},
		{"tenant", "--help"}, {"tenant", "create", "--help"}, {"tenant", "create", "--id", "acme", "-h"}, {"tenant", "list", "-h"},
		{"outbox", "--help"}, {"outbox", "list", "--dead", "--help"},
		{"tenant", "update", "--id", "acme", "--help"}, {"admin-key", "--help"}, {"admin-key", "create", "--name", "x", "-h"},
		{"admin-key", "list", "--help"}, {"admin-key", "revoke", "--id", "x", "--help"}, {"user", "list", "--help"},
		{"user", "delete", "--email", "a@example.test", "--help"}, {"user", "enable", "-h"}, {"user", "set-role", "--help"},
	} {
		stdout, stderr, err := runLatch(t, args...)
		if code := exitCode(err); err != nil && !errors.Is(err, flag.ErrHelp) || code != 0 {
			t.Errorf("latch %v: err %v, exit %d; want exit 0", args, err, code)
		}
		if !strings.Contains(stdout, "Usage") || stderr != "" {
			t.Errorf("latch %v: stdout %q, stderr %q; want the usage on stdout alone", args, stdout, stderr)
		}
		if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("latch %v touched the database (%v)", args, err)
		}
	}
}

func TestUnknownEnvironmentVariablesAreWarnedAbout(t *testing.T) {
	t.Setenv("LATCH_DATABASE_URL", "sqlite://"+filepath.Join(t.TempDir(), "latch.db"))
	t.Setenv("LATCH_SERVR_ADDR", ":9999")
	_, stderr, err := runLatch(t, "migrate", "status")
	if err != nil {
		t.Fatalf("migrate status: %v", err)
	}
	if want := "LATCH_SERVR_ADDR is not a configuration key and is ignored (did you mean LATCH_SERVER_ADDR?)"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	answer := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(answer)
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LATCH_SERVER_ADDR", ":"+port) // as configured in an image: no host, reached on loopback
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--ready"}} {
		if _, stderr, err := runLatch(t, args...); err != nil {
			t.Errorf("latch %v against a healthy server: %v (%s)", args, err, stderr)
		}
	}
	answer = http.StatusServiceUnavailable
	if _, _, err := runLatch(t, "healthcheck", "--ready"); exitCode(err) != 1 {
		t.Errorf("healthcheck of a server answering 503: exit %d, want 1", exitCode(err))
	}
	srv.Close()
	if _, _, err := runLatch(t, "healthcheck", "--timeout", "1s"); exitCode(err) != 1 {
		t.Errorf("healthcheck with no server: exit %d, want 1", exitCode(err))
	}
}
