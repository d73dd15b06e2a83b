package apptest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/store"
)

// AdminKey makes an admin key as `latch admin-key create` does ("" tenant: every tenant) and returns
// its secret.
func (in *Instance) AdminKey(t testing.TB, name, tenant string) string {
	t.Helper()
	_, secret, err := in.App.Service.CreateAdminKey(context.Background(), name, tenant, Operator)
	if err != nil {
		t.Fatalf("create admin key %s: %v", name, err)
	}
	return secret
}

// AdminUser is a user as the admin API answers it.
type AdminUser struct {
	ID            string          `json:"id"`
	TenantID      string          `json:"tenantId"`
	Email         string          `json:"email"`
	EmailVerified bool            `json:"emailVerified"`
	Disabled      bool            `json:"disabled"`
	TOTPEnabled   bool            `json:"totpEnabled"`
	Role          string          `json:"role"`
	Metadata      json.RawMessage `json:"metadata"`
}

// AdminEvent is an entry of the security event log as the admin API answers it.
type AdminEvent struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"`
	TenantID string `json:"tenantId"`
	UserID   string `json:"userId"`
	Detail   string `json:"detail"`
	Actor    *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"actor"`
}

// Page is a page of an admin listing.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

// AdminPage reads one page of an admin listing, requiring a 200.
func AdminPage[T any](t testing.TB, in *Instance, key, path string) Page[T] {
	t.Helper()
	r := in.Get(t, path, Bearer(key)...)
	WantStatus(t, r, 200)
	var p Page[T]
	r.JSON(t, &p)
	return p
}

// AdminAll reads every page of an admin listing (path may carry filters), following the cursors.
func AdminAll[T any](t testing.TB, in *Instance, key, path string, limit int) []T {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var all []T
	cursor := ""
	for range 10_000 {
		p := AdminPage[T](t, in, key, fmt.Sprintf("%s%slimit=%d&cursor=%s", path, sep, limit, url.QueryEscape(cursor)))
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			return all
		}
		cursor = *p.NextCursor
	}
	t.Fatalf("%s: no last page after 10000", path)
	return nil
}

// RowsHolding lists every column of every table of the instance's database (read from the schema,
// so a table added later is searched too) that holds text, case-insensitively, in some row, as
// "table.column". Binary columns are searched as bytes.
func (in *Instance) RowsHolding(t testing.TB, text string) []string {
	t.Helper()
	db := in.App.Store.SQLDB()
	needle := strings.ToLower(text)
	type column struct{ table, name, kind string }
	var columns []column
	var query string
	if in.App.Store.Dialect() == store.Postgres {
		query = `SELECT table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema = 'public' AND table_name <> 'goose_db_version' ORDER BY table_name, ordinal_position`
	} else {
		query = `SELECT m.name, c.name, lower(c.type) FROM sqlite_master m, pragma_table_info(m.name) c
			WHERE m.type = 'table' AND m.name NOT IN ('goose_db_version', 'sqlite_sequence') ORDER BY m.name, c.cid`
	}
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.kind); err != nil {
			t.Fatal(err)
		}
		columns = append(columns, c)
	}
	rows.Close()
	if len(columns) == 0 {
		t.Fatal("read no columns from the schema")
	}
	var found []string
	for _, c := range columns {
		var match string
		switch {
		case in.App.Store.Dialect() == store.Postgres && c.kind == "bytea":
			match = fmt.Sprintf(`strpos(lower(encode(%q, 'escape')), $1) > 0`, c.name)
		case in.App.Store.Dialect() == store.Postgres:
			match = fmt.Sprintf(`strpos(lower(%q::text), $1) > 0`, c.name)
		default:
			match = fmt.Sprintf(`instr(lower(CAST(%q AS TEXT)), ?) > 0`, c.name)
		}
		var n int
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %q WHERE %s`, c.table, match), needle).Scan(&n); err != nil && err != sql.ErrNoRows {
			t.Fatalf("search %s.%s: %v", c.table, c.name, err)
		}
		if n > 0 {
			found = append(found, c.table+"."+c.name)
		}
	}
	return found
}

// Since formats a time for the events listing's since and until.
func Since(at time.Time) string { return url.QueryEscape(at.UTC().Format(time.RFC3339Nano)) }
