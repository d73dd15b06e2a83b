package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// admRun runs the latch command line against the database URL, with hashing made cheap.
func admRun(t *testing.T, dbURL string, args ...string) (stdout string, err error) {
	t.Helper()
	t.Setenv("LATCH_DATABASE_URL", dbURL)
	t.Setenv("LATCH_PASSWORD_ARGON2_MEMORY_KIB", "1024")
	t.Setenv("LATCH_PASSWORD_ARGON2_ITERATIONS", "1")
	t.Setenv("LATCH_LOG_LEVEL", "error")
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	if err != nil {
		t.Logf("latch %v: %v\nstderr: %s", args, err, errOut.String())
	}
	return out.String(), err
}

func TestAdminUserCreateAndDisable(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		dbURL := storetest.URL(t, d)
		const email, pw = "operator-made@example.test", "made by the operator"
		if _, err := admRun(t, dbURL, "user", "create", "--email", "Operator-Made@Example.test", "--password", pw); err != nil {
			t.Fatalf("user create: %v", err)
		}
		_, err := admRun(t, dbURL, "user", "create", "--email", email, "--password", "another password")
		if err == nil {
			t.Fatal("a second user create with the same email succeeded")
		}
		var usage usageError
		if errors.As(err, &usage) {
			t.Errorf("a duplicate is reported as a usage error: %v", err)
		}

		smtp := mailtest.NewServer(t)
		h := startHarness(t, testConfig(dbURL, smtp), smtp, newClock())
		cred, err := h.app.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
		if err != nil {
			t.Fatal(err)
		}
		u := cred.User
		if u.EmailVerifiedAt == nil || u.Status != auth.StatusActive {
			t.Errorf("created user: verified %v, status %q; want verified and active", u.EmailVerifiedAt, u.Status)
		}
		// The first password stands; the duplicate did not overwrite it.
		pair := h.login(email, pw)
		other := h.login(email, pw)

		if _, err := admRun(t, dbURL, "user", "disable", "--email", email); err != nil {
			t.Fatalf("user disable: %v", err)
		}

		pwWantProblem(t, pwLoginStep(h, email, pw), http.StatusUnauthorized, "account_disabled")
		// A wrong password says nothing more than for anyone else.
		pwWantProblem(t, pwLoginStep(h, email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		for _, p := range []tokenPair{pair, other} {
			pwWantProblem(t, h.post("/v2/auth/refresh", map[string]string{"refreshToken": p.RefreshToken}), http.StatusUnauthorized, "account_disabled")
			expect(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(p.AccessToken)...), http.StatusUnauthorized)
		}
		live, err := h.app.Store.ListSessions(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 0 {
			t.Errorf("%d sessions still live after disable", len(live))
		}
	})
}

func TestAdminUserDisableUnknownEmailFails(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	if _, err := admRun(t, dbURL, "user", "disable", "--email", "nobody@example.test"); err == nil {
		t.Error("disabling an unknown email succeeded")
	}
}

func TestAdminUserUsageErrors(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	for name, args := range map[string][]string{
		"create without email":  {"user", "create", "--password", "long enough password"},
		"disable without email": {"user", "disable"},
		"blank email":           {"user", "disable", "--email", "  "},
		"short password":        {"user", "create", "--email", "short@example.test", "--password", "short"},
		"no action":             {"user"},
		"unknown action":        {"user", "delete", "--email", "x@example.test"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := admRun(t, dbURL, args...)
			var usage usageError
			if !errors.As(err, &usage) {
				t.Fatalf("latch %v: err = %v, want a usage error", args, err)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}
