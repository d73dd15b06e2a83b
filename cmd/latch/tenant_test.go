package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

func TestTenantCreateAndList(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		dbURL := storetest.URL(t, d)
		out, err := runAdmin(t, dbURL, "tenant", "create", "--id", "acme", "--name", "Acme", "--second-step", "off",
			"--refresh-rotation=false", "--app-name", "Acme Pay", "--routes", `{"base":"https://api.acme.test/"}`)
		if err != nil {
			t.Fatalf("tenant create: %v", err)
		}
		if out != "created tenant acme (Acme)\n" {
			t.Errorf("tenant create printed %q", out)
		}
		if _, err := runAdmin(t, dbURL, "tenant", "create", "--id", "acme"); err == nil || errors.As(err, new(usageError)) {
			t.Errorf("a second tenant acme: %v, want a failure that is not a usage error", err)
		}
		if _, err := runAdmin(t, dbURL, "user", "create", "--tenant", "acme", "--email", "ann@acme.test", "--password", apptest.Password); err != nil {
			t.Fatalf("user create in acme: %v", err)
		}

		out, err = runAdmin(t, dbURL, "tenant", "list")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("tenant list:\n%s\nwant a header and two tenants", out)
		}
		if !strings.Contains(lines[1], "Acme Pay") {
			t.Errorf("tenant list line %q lacks the app name", lines[1])
		}
		for i, want := range [][]string{{"acme", "Acme", "off", "false", "(tokens.issuer)"}, {"default", "default", "email_code", "true"}} {
			fields := strings.Fields(lines[i+1])
			for j, f := range want {
				if j >= len(fields) || fields[j] != f {
					t.Errorf("tenant list line %q: field %d is not %q", lines[i+1], j, f)
				}
			}
		}

		// The running service sees the tenant and its settings.
		smtp := mailtest.NewServer(t)
		h := apptest.Start(t, apptest.Config(dbURL, smtp), smtp, apptest.NewClock())
		r := h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password))
		apptest.WantStatus(t, r, http.StatusOK)
		if r.TokenPair(t).RefreshToken == "" {
			t.Errorf("login into acme (second step off) answered %s", r.Body)
		}
	})
}

func TestTenantUsageErrorsNameTheFlag(t *testing.T) {
	dbURL := storetest.URL(t, store.SQLite)
	for name, c := range map[string]struct {
		args []string
		flag string
	}{
		"no id":          {[]string{"tenant", "create"}, "--id"},
		"not a slug":     {[]string{"tenant", "create", "--id", "Acme Corp"}, "--id"},
		"second step":    {[]string{"tenant", "create", "--id", "a", "--second-step", "sms"}, "--second-step"},
		"mail from":      {[]string{"tenant", "create", "--id", "a", "--mail-from", "nope"}, "--mail-from"},
		"routes":         {[]string{"tenant", "create", "--id", "a", "--routes", "[1]"}, "--routes"},
		"origins":        {[]string{"tenant", "create", "--id", "a", "--allowed-origins", "https://a.test/path"}, "--allowed-origins"},
		"unknown action": {[]string{"tenant", "frobnicate", "--id", "a"}, "tenant create|update|list"},
		"unknown tenant": {[]string{"user", "create", "--tenant", "nope", "--email", "a@example.test", "--password", apptest.Password}, "--tenant"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runAdmin(t, dbURL, c.args...)
			var usage usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.flag) {
				t.Fatalf("latch %v: err = %v, want a usage error naming %s", c.args, err, c.flag)
			}
		})
	}
}
