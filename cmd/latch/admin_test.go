package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// runAdmin runs the latch command line against the database URL, with hashing made cheap.
func runAdmin(t *testing.T, dbURL string, args ...string) (stdout string, err error) {
	t.Helper()
	t.Setenv("LATCH_DATABASE_URL", dbURL)
	t.Setenv("LATCH_SECRETS_ENCRYPTION_KEY", apptest.EncryptionKey)
	t.Setenv("LATCH_PASSWORD_ARGON2_MEMORY_KIB", "1024")
	t.Setenv("LATCH_PASSWORD_ARGON2_ITERATIONS", "1")
	t.Setenv("LATCH_LOG_LEVEL", "error")
	stdout, stderr, err := runLatch(t, args...)
	if err != nil {
		t.Logf("latch %v: %v\nstderr: %s", args, err, stderr)
	}
	return stdout, err
}

func TestAdminUserCreateAndDisable(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		dbURL := storetest.URL(t, d)
		const email, pw = "operator-made@example.test", "made by the operator"
		if _, err := runAdmin(t, dbURL, "user", "create", "--email", "Operator-Made@Example.test", "--password", pw); err != nil {
			t.Fatalf("user create: %v", err)
		}
		_, err := runAdmin(t, dbURL, "user", "create", "--email", email, "--password", "another password")
		if err == nil {
			t.Fatal("a second user create with the same email succeeded")
		}
		var usage usageError
		if errors.As(err, &usage) {
			t.Errorf("a duplicate is reported as a usage error: %v", err)
		}

		smtp := mailtest.NewServer(t)
		h := apptest.Start(t, apptest.Config(dbURL, smtp), smtp, apptest.NewClock())
		cred, err := h.App.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
		if err != nil {
			t.Fatal(err)
		}
		u := cred.User
		if u.EmailVerifiedAt == nil || u.Status != auth.StatusActive {
			t.Errorf("created user: verified %v, status %q; want verified and active", u.EmailVerifiedAt, u.Status)
		}
		// The first password stands; the duplicate did not overwrite it.
		pair := h.Login(t, email, pw)
		other := h.Login(t, email, pw)

		if _, err := runAdmin(t, dbURL, "user", "disable", "--email", email); err != nil {
			t.Fatalf("user disable: %v", err)
		}

		apptest.WantProblem(t, h.LoginStep(t, email, pw), http.StatusUnauthorized, "account_disabled")
		// A wrong password says nothing more than for anyone else.
		apptest.WantProblem(t, h.LoginStep(t, email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		for _, p := range []apptest.TokenPair{pair, other} {
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "account_disabled")
			apptest.WantStatus(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(p.AccessToken)...), http.StatusUnauthorized)
		}
		live, err := h.App.Store.ListSessions(context.Background(), u.ID)
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
	if _, err := runAdmin(t, dbURL, "user", "disable", "--email", "nobody@example.test"); err == nil {
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
		"unknown action":        {"user", "frobnicate", "--email", "x@example.test"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runAdmin(t, dbURL, args...)
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

// TestOutboxListShowsDeadMail: an operator sees the mail the server refused for good, without its
// data, from the command line.
func TestOutboxListShowsDeadMail(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		dbURL := storetest.URL(t, d)
		smtp := mailtest.NewServer(t)
		h := apptest.Start(t, apptest.Config(dbURL, smtp), smtp, apptest.NewClock())
		h.Signup(t, "fine@example.test", apptest.Password)
		smtp.Refuse(550)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials("gone@example.test", apptest.Password)), http.StatusCreated)
		apptest.Eventually(t, "the refused message is dead", func() bool {
			rows := h.OutboxRowsTo(t, "gone@example.test")
			return len(rows) == 1 && rows[0].Dead
		})
		out, err := runAdmin(t, dbURL, "outbox", "list", "--dead")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], " dead ") || !strings.Contains(lines[1], "gone@example.test") || !strings.Contains(lines[1], "550") {
			t.Errorf("outbox list --dead:\n%s\nwant the header and the one dead message with its 550", out)
		}
		all, err := runAdmin(t, dbURL, "outbox", "list")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(all, "\n"); n != 3 || !strings.Contains(all, " sent ") {
			t.Errorf("outbox list:\n%s\nwant the header, the sent message and the dead one", all)
		}
		if strings.Contains(all, `"Code"`) {
			t.Errorf("outbox list shows message data:\n%s", all)
		}
	})
}
