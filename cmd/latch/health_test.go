package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

func TestHealthAndReadiness(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		expect(t, h.do(http.MethodGet, "/healthz", nil), http.StatusOK)
		expect(t, h.do(http.MethodGet, "/readyz", nil), http.StatusOK)
	})
}

// TestReadyzWhenDatabaseIsGone drops the instance's Postgres database under it: readyz must turn 503
// (problem+json, not_ready) while healthz, which only says the process is alive, stays 200.
func TestReadyzWhenDatabaseIsGone(t *testing.T) {
	h := newHarness(t, store.Postgres)
	expect(t, h.do(http.MethodGet, "/readyz", nil), http.StatusOK)

	u, err := url.Parse(h.cfg.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	name := u.Path[1:]
	u.Path = "/postgres"
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}

	r := h.do(http.MethodGet, "/readyz", nil)
	expect(t, r, http.StatusServiceUnavailable)
	if p := r.Problem(t); p.Code != "not_ready" || p.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz problem = %+v", p)
	}
	expect(t, h.do(http.MethodGet, "/healthz", nil), http.StatusOK)
}

// TestServeShutsDownOnCancel runs the real `latch serve` path and stops it the way SIGINT/SIGTERM do
// (the signal context is cancelled): it must answer while up and return cleanly.
func TestServeShutsDownOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LATCH_DATABASE_URL", storetest.SQLiteURL(t))
	t.Setenv("LATCH_SERVER_ADDR", addr)
	t.Setenv("LATCH_PASSWORD_ARGON2_MEMORY_KIB", "1024")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, &bytes.Buffer{}, &stderr) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(fmt.Sprintf("http://%s/readyz", addr))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	if !bytes.Contains(stderr.Bytes(), []byte(`"msg":"stopped"`)) {
		t.Errorf("no clean-stop log line; log:\n%s", stderr.String())
	}
}
