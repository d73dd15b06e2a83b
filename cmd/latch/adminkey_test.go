package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestAdminKeyCommands: a key is printed once, alone on the last line, works against a running
// instance, is listed without its secret, and stops working once revoked.
func TestAdminKeyCommands(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		dbURL := storetest.URL(t, d)
		if _, err := runAdmin(t, dbURL, "tenant", "create", "--id", "acme"); err != nil {
			t.Fatal(err)
		}
		out, err := runAdmin(t, dbURL, "admin-key", "create", "--name", "billing backend", "--tenant", "acme")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		key := lines[len(lines)-1]
		if !strings.HasPrefix(key, auth.AdminKeyPrefix) || len(key) != 47 || strings.Contains(key, " ") {
			t.Fatalf("admin-key create printed %q: want the key alone on the last line", out)
		}
		if _, err := runAdmin(t, dbURL, "admin-key", "create", "--name", "x", "--tenant", "nope"); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--tenant") {
			t.Errorf("a key of an unknown tenant: %v, want a usage error naming --tenant", err)
		}

		smtp := mailtest.NewServer(t)
		h := apptest.Start(t, apptest.Config(dbURL, smtp), smtp, apptest.NewClock())
		r := h.Get(t, "/v2/admin/tenants", apptest.Bearer(key)...)
		apptest.WantStatus(t, r, http.StatusOK)

		out, err = runAdmin(t, dbURL, "admin-key", "list")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, key) || strings.Contains(out, key[len(auth.AdminKeyPrefix):]) {
			t.Errorf("admin-key list shows the secret:\n%s", out)
		}
		rows := strings.Split(strings.TrimSpace(out), "\n")
		fields := strings.Fields(rows[len(rows)-1])
		// ID, NAME (two words), TENANT, CREATED, LAST USED (the request above), REVOKED
		if len(rows) != 2 || len(fields) != 7 || fields[1]+" "+fields[2] != "billing backend" || fields[3] != "acme" || fields[5] == "never" || fields[6] != "-" {
			t.Fatalf("admin-key list:\n%s", out)
		}
		if _, err := runAdmin(t, dbURL, "admin-key", "revoke", "--id", fields[0]); err != nil {
			t.Fatal(err)
		}
		apptest.WantProblem(t, h.Get(t, "/v2/admin/tenants", apptest.Bearer(key)...), http.StatusUnauthorized, "admin_key_required")
		if _, err := runAdmin(t, dbURL, "admin-key", "revoke", "--id", fields[0]); err == nil {
			t.Error("revoking a revoked key succeeded")
		}
		if where := h.RowsHolding(t, key); len(where) != 0 {
			t.Errorf("the key is stored in %v", where)
		}
	})
}

// TestUserCommands: list, set-role, disable, enable and delete by email, on the service's rules.
func TestUserCommands(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	for _, args := range [][]string{
		{"tenant", "create", "--id", "acme"},
		{"user", "create", "--tenant", "acme", "--email", "ann@acme.test", "--password", apptest.Password},
		{"user", "create", "--email", "bob@example.test", "--password", apptest.Password},
		{"user", "set-role", "--tenant", "acme", "--email", "ann@acme.test", "--role", "owner"},
		{"user", "disable", "--email", "bob@example.test"},
	} {
		if _, err := runAdmin(t, dbURL, args...); err != nil {
			t.Fatalf("latch %v: %v", args, err)
		}
	}
	list := func(args ...string) []string {
		t.Helper()
		out, err := runAdmin(t, dbURL, append([]string{"user", "list"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			got = append(got, f[1]+"/"+f[2]+"/"+f[4]+"/"+f[5])
		}
		return got
	}
	if diff := slicesDiff([]string{"acme/ann@acme.test/active/owner", "default/bob@example.test/disabled/user"}, list()); diff != "" {
		t.Error(diff)
	}
	if diff := slicesDiff([]string{"default/bob@example.test/disabled/user"}, list("--disabled", "true")); diff != "" {
		t.Error(diff)
	}
	if diff := slicesDiff([]string{"acme/ann@acme.test/active/owner"}, list("--email-prefix", "AN", "--limit", "1")); diff != "" {
		t.Error(diff)
	}
	if _, err := runAdmin(t, dbURL, "user", "enable", "--email", "bob@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := runAdmin(t, dbURL, "user", "delete", "--tenant", "acme", "--email", "ann@acme.test"); err != nil {
		t.Fatal(err)
	}
	if diff := slicesDiff([]string{"default/bob@example.test/active/user"}, list()); diff != "" {
		t.Error(diff)
	}
	if _, err := runAdmin(t, dbURL, "user", "delete", "--tenant", "acme", "--email", "ann@acme.test"); err == nil {
		t.Error("deleting a deleted user succeeded")
	}
	for _, args := range [][]string{
		{"user", "set-role", "--email", "bob@example.test", "--role", "has space"},
		{"user", "list", "--disabled", "maybe"},
		{"user", "list", "--email-prefix", "\x01"},
	} {
		if _, err := runAdmin(t, dbURL, args...); !errors.As(err, new(usageError)) {
			t.Errorf("latch %v: %v, want a usage error", args, err)
		}
	}
	// The events name the command that made each change.
	smtp := mailtest.NewServer(t)
	h := apptest.Start(t, apptest.Config(dbURL, smtp), smtp, apptest.NewClock())
	events, err := h.App.Store.ListEvents(context.Background(), auth.EventQuery{Kind: "user_deleted", Limit: 10})
	if err != nil || len(events) != 1 || events[0].Actor != (auth.Actor{Type: auth.ActorCLI, Name: "latch user delete"}) {
		t.Errorf("user_deleted events = %+v, %v", events, err)
	}
}

// TestTenantUpdate changes only the flags given.
func TestTenantUpdate(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	if _, err := runAdmin(t, dbURL, "tenant", "create", "--id", "acme", "--name", "Acme", "--app-name", "Acme Pay"); err != nil {
		t.Fatal(err)
	}
	out, err := runAdmin(t, dbURL, "tenant", "update", "--id", "acme", "--second-step", "off")
	if err != nil || out != "updated tenant acme (Acme)\n" {
		t.Fatalf("tenant update: %q, %v", out, err)
	}
	out, err = runAdmin(t, dbURL, "tenant", "list")
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Split(out, "\n")[1]; !strings.Contains(line, "off") || !strings.Contains(line, "Acme Pay") {
		t.Errorf("after the update: %q", line)
	}
	if _, err := runAdmin(t, dbURL, "tenant", "update", "--id", "acme", "--locale", "?"); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--locale") {
		t.Errorf("a bad locale: %v, want a usage error naming --locale", err)
	}
	if _, err := runAdmin(t, dbURL, "tenant", "update", "--id", "nope", "--name", "x"); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("updating an unknown tenant: %v, want a failure that is not a usage error", err)
	}
}

func slicesDiff(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return "want " + strings.Join(want, ", ") + "\n got " + strings.Join(got, ", ")
}
