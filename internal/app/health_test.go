package app_test

import (
	"database/sql"
	"net/http"
	"net/url"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

func TestHealthAndReadiness(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		apptest.WantStatus(t, h.Get(t, "/healthz"), http.StatusOK)
		apptest.WantStatus(t, h.Get(t, "/readyz"), http.StatusOK)
	})
}

// TestReadyzWhenDatabaseIsGone drops the instance's Postgres database under it: readyz must turn 503
// (problem+json, not_ready) while healthz, which only says the process is alive, stays 200.
func TestReadyzWhenDatabaseIsGone(t *testing.T) {
	h := apptest.New(t, store.Postgres)
	apptest.WantStatus(t, h.Get(t, "/readyz"), http.StatusOK)

	u, err := url.Parse(h.Config.Database.URL)
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

	apptest.WantProblem(t, h.Get(t, "/readyz"), http.StatusServiceUnavailable, "not_ready")
	apptest.WantStatus(t, h.Get(t, "/healthz"), http.StatusOK)
}
