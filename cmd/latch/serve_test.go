package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestServeShutsDownOnCancel runs the real `latch serve` path and stops it the way SIGINT/SIGTERM do
// (the signal context is cancelled): it must answer while up and return cleanly.
func TestServeShutsDownOnCancel(t *testing.T) {
	addr, internal := freeAddr(t), freeAddr(t)
	t.Setenv("LATCH_DATABASE_URL", storetest.SQLiteURL(t))
	t.Setenv("LATCH_SERVER_ADDR", addr)
	t.Setenv("LATCH_SERVER_INTERNAL_ADDR", internal)
	t.Setenv("LATCH_PASSWORD_ARGON2_MEMORY_KIB", "1024")
	t.Setenv("LATCH_SANDBOX_ENABLED", "true")
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
	status := func(url string) int {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status("http://" + internal + "/metrics"); got != http.StatusOK {
		t.Errorf("/metrics on server.internal_addr: %d, want 200", got)
	}
	if got := status("http://" + addr + "/metrics"); got != http.StatusNotFound {
		t.Errorf("/metrics on server.addr with an internal listener: %d, want 404", got)
	}
	// admin.listener auto: with an internal listener the admin API is there and only there (401
	// without a key where it is served, 404 where it is not).
	if got := status("http://" + internal + "/v2/admin/users"); got != http.StatusUnauthorized {
		t.Errorf("/v2/admin/users on server.internal_addr: %d, want 401", got)
	}
	if got := status("http://" + addr + "/v2/admin/users"); got != http.StatusNotFound {
		t.Errorf("/v2/admin/users on server.addr with an internal listener: %d, want 404", got)
	}
	if _, stderr, err := runLatch(t, "healthcheck", "--ready"); err != nil {
		t.Errorf("healthcheck against the running server: %v (%s)", err, stderr)
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
	for _, line := range []string{`"msg":"stopped"`, `"msg":"the sandbox inbox answers only clients on this machine; set sandbox.allow_remote to change that"`,
		`"msg":"internal listener"`, `"admin_api":true`} {
		if !bytes.Contains(stderr.Bytes(), []byte(line)) {
			t.Errorf("no %s in the log:\n%s", line, stderr.String())
		}
	}
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
