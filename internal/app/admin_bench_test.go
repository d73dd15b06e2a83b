package app_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// benchUsers is how many users BenchmarkAdminUserList lists among.
const benchUsers = 100_000

// BenchmarkAdminUserList measures the admin user listing through the real HTTP handler (key check,
// query, JSON) on Postgres holding 100k users, written in bulk rather than through the API: the
// first page, a page deep in the listing (a cursor is a position, so depth costs nothing), an email
// prefix within a tenant and across tenants, and walking every page.
func BenchmarkAdminUserList(b *testing.B) {
	h := apptest.New(b, store.Postgres)
	db := h.App.Store.SQLDB()
	ctx := context.Background()
	for _, stmt := range []string{
		`INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`,
		// Nine in ten users in the default tenant, the rest in two others; one in ten disabled.
		`INSERT INTO users (id, tenant_id, email, password_hash, status, created_at, updated_at)
			SELECT gen_random_uuid(), CASE g % 20 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE 'default' END,
				'user' || lpad(g::text, 6, '0') || '@bench.test', 'x', CASE WHEN g % 10 = 3 THEN 'disabled' ELSE 'active' END, now(), now()
			FROM generate_series(1, 100000) g`,
		`ANALYZE users`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
	key := apptest.Bearer(h.AdminKey(b, "bench", ""))
	get := func(b *testing.B, path string) apptest.Page[apptest.AdminUser] {
		r, err := h.Send(http.MethodGet, path, nil, key...)
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("GET %s: %d %s %v", path, r.Status, r.Body, err)
		}
		var p apptest.Page[apptest.AdminUser]
		r.JSON(b, &p)
		return p
	}
	const tenantPage = "/v2/admin/users?tenantId=default&limit=50"

	// The walk, once, finds the cursor of a page half way through.
	walk := func(b *testing.B) (pages int, deep string) {
		n, cursor := 0, ""
		for {
			p := get(b, "/v2/admin/users?limit=200&cursor="+url.QueryEscape(cursor))
			n += len(p.Items)
			pages++
			if n >= benchUsers/2 && deep == "" {
				deep = *p.NextCursor
			}
			if p.NextCursor == nil {
				if n != benchUsers {
					b.Fatalf("walked %d users, want %d", n, benchUsers)
				}
				return pages, deep
			}
			cursor = *p.NextCursor
		}
	}
	_, deep := walk(b)
	second := *get(b, tenantPage).NextCursor

	for _, c := range []struct{ name, path string }{
		{"first_page", tenantPage},
		{"next_page", tenantPage + "&cursor=" + url.QueryEscape(second)},
		{"deep_page_every_tenant", "/v2/admin/users?limit=200&cursor=" + url.QueryEscape(deep)},
		{"prefix_in_tenant", "/v2/admin/users?tenantId=default&emailPrefix=user05&limit=50"},
		{"prefix_every_tenant", "/v2/admin/users?emailPrefix=user0512&limit=50"},
		{"disabled_in_tenant", "/v2/admin/users?tenantId=default&disabled=true&limit=50"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if p := get(b, c.path); len(p.Items) == 0 {
					b.Fatalf("%s: empty page", c.path)
				}
			}
		})
	}
	b.Run("walk_all_100k_pages_of_200", func(b *testing.B) {
		for b.Loop() {
			pages, _ := walk(b)
			b.ReportMetric(float64(pages), "pages/op")
		}
	})
}
