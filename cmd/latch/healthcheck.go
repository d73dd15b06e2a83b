package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/latch-auth/latch/internal/config"
)

const healthcheckHelp = `Asks the server running on this machine whether it is up: GET /healthz on server.addr (or
/readyz with --ready, which also checks the database). Exits 0 when it answers 200, 1 otherwise.
Made for container health checks in images without a shell or curl (the Dockerfile uses it).`

func cmdHealthcheck(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("healthcheck [--ready] [--timeout D]", healthcheckHelp, stdout, stderr)
	ready := fs.Bool("ready", false, "ask /readyz (database reachable) instead of /healthz (process up)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	url, err := localURL(cfg.Server.Addr)
	if err != nil {
		return err
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", path, res.Status)
	}
	fmt.Fprintf(stdout, "%s %s\n", path, res.Status)
	return nil
}

// localURL is where a server listening on addr is reached from this machine: an unspecified host
// (":10952", "0.0.0.0:10952", "[::]:10952") is reached on loopback.
func localURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("server.addr: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
