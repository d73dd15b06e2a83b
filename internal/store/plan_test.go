package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/auth"

	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestRotatePlanIsKeyLookups: the rotation must read the token by its hash and the session and user
// by primary key however many sessions exist and whether or not the tables were ever analysed.
// Written as a join, this statement read every live session through the partial index
// sessions_user_idx on a database without statistics (autovacuum off), so each refresh cost more than
// the last.
func TestRotatePlanIsKeyLookups(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	u := newUser(t, s, "plan@example.test")
	for i := range 200 {
		openSession(t, s, u, fmt.Sprintf("plan-%d", i))
	}
	conn, err := s.SQLDB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One rotation alone, and a group of eight (the statement a busy instance sends).
	for _, st := range []struct{ name, prepare, execute string }{
		{"one", `PREPARE rotate_plan (timestamptz, bytea, bytea, timestamptz, timestamptz, timestamptz) AS ` + store.RotateStatement,
			`EXECUTE rotate_plan (now(), '\x00', '\x01', now(), now(), now())`},
		{"group", `PREPARE rotate_group_plan (timestamptz, bytea[], bytea[], timestamptz[], timestamptz[], timestamptz, int) AS ` + store.RotateBatchStatement,
			`EXECUTE rotate_group_plan (now(), ARRAY['\x01', '\x02', '\x03', '\x04', '\x05', '\x06', '\x07', '\x08']::bytea[],
				ARRAY['\x11', '\x12', '\x13', '\x14', '\x15', '\x16', '\x17', '\x18']::bytea[], array_fill(now(), ARRAY[8]), array_fill(now(), ARRAY[8]), now(), 8)`},
	} {
		if _, err := conn.ExecContext(ctx, st.prepare); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			mode := st.name + ", " + mode
			if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode[len(st.name)+2:]); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			err := conn.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+st.execute).Scan(&raw)
			if err != nil {
				t.Fatal(err)
			}
			var plans []struct{ Plan planNode }
			if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
				t.Fatalf("%s: cannot read plan %s: %v", mode, raw, err)
			}
			scans := 0
			plans[0].Plan.walk(func(n planNode) {
				switch n.NodeType {
				case "Index Scan", "Index Only Scan":
					scans++
				case "Seq Scan", "Bitmap Heap Scan", "Bitmap Index Scan":
					t.Errorf("%s: %s on %s%s: want an index lookup by key", mode, n.NodeType, n.RelationName, n.IndexName)
				}
				if n.IndexName == "sessions_user_idx" {
					t.Errorf("%s: plan reads sessions through sessions_user_idx", mode)
				}
			})
			if scans == 0 {
				t.Errorf("%s: no index scan in plan %s", mode, raw)
			}
		}
	}
}

// TestAdminListPlansAreIndexRanges: every variant of the admin user listing (a tenant or all, after a
// cursor or not, an email prefix, the disabled filter) reads users through users_list_idx and never
// scans the table. Without a prefix the index is read in the listing's order, with no sort, so a page
// costs its own rows however many users there are; with one the planner may instead read the
// prefix's range and sort it, which costs the matches, when it expects few. The event log reads its
// indexes backwards the same way. The tables hold enough rows, analysed, that the planner would
// prefer a scan and a sort if the index could not serve.
func TestAdminListPlansAreIndexRanges(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	db := s.SQLDB()
	for _, stmt := range []string{
		`INSERT INTO tenants (id, name) VALUES ('acme', 'Acme')`,
		`INSERT INTO users (id, tenant_id, email, password_hash, status, created_at, updated_at)
			SELECT gen_random_uuid(), CASE WHEN g % 5 = 0 THEN 'acme' ELSE 'default' END, 'user' || g || '@plan.test', 'x',
				CASE WHEN g % 10 = 0 THEN 'disabled' ELSE 'active' END, now(), now()
			FROM generate_series(1, 20000) g`,
		`INSERT INTO security_events (user_id, tenant_id, kind, created_at)
			SELECT id, tenant_id, 'login', now() FROM users`,
		// Whether each listed user's authenticator is on is a probe of totp_factors by key.
		`INSERT INTO totp_factors (user_id, secret, enabled_at, created_at)
			SELECT id, '\x00', now(), now() FROM users WHERE email LIKE '%3@plan.test'`,
		`ANALYZE users`, `ANALYZE security_events`, `ANALYZE totp_factors`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	for name, q := range map[string]auth.UserQuery{
		"a tenant":                      {TenantID: "default", Limit: 51},
		"a tenant after a cursor":       {TenantID: "default", AfterTenant: "default", AfterEmail: "user5000@plan.test", Limit: 51},
		"a tenant, a prefix":            {TenantID: "default", EmailPrefix: "user12", Limit: 51},
		"a tenant, a prefix, a cursor":  {TenantID: "default", EmailPrefix: "user12", AfterTenant: "default", AfterEmail: "user1234@plan.test", Limit: 51},
		"a tenant, disabled":            {TenantID: "acme", Disabled: &yes, Limit: 51},
		"every tenant":                  {Limit: 51},
		"every tenant after a cursor":   {AfterTenant: "acme", AfterEmail: "user9995@plan.test", Limit: 51},
		"every tenant, a prefix":        {EmailPrefix: "user123", Limit: 51},
		"every tenant, a prefix, after": {EmailPrefix: "user123", AfterTenant: "acme", AfterEmail: "user1230@plan.test", Limit: 51},
	} {
		wantIndexRange(t, db, name, s.UserListSQL(q), "users_list_idx", q.EmailPrefix != "")
	}
	for name, q := range map[string]auth.EventQuery{
		"every event":            {Limit: 51},
		"every event, a cursor":  {BeforeID: 10000, Limit: 51},
		"a tenant's":             {TenantID: "acme", Limit: 51},
		"a tenant's, a cursor":   {TenantID: "acme", BeforeID: 10000, Limit: 51},
		"a tenant's, since, ...": {TenantID: "acme", Kind: "login", Since: time.Now().Add(-time.Hour), BeforeID: 10000, Limit: 51},
	} {
		wantIndexRange(t, db, "events: "+name, s.EventListSQL(q), "", false)
	}
}

// wantIndexRange explains a statement and requires an index scan (of the named index, when given),
// no sequential scan and, unless sorting is allowed, no sort.
func wantIndexRange(t *testing.T, db *sql.DB, name, stmt, index string, sortAllowed bool) {
	t.Helper()
	var raw []byte
	if err := db.QueryRowContext(context.Background(), "EXPLAIN (FORMAT JSON) "+stmt).Scan(&raw); err != nil {
		t.Fatalf("%s: explain %s: %v", name, stmt, err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("%s: cannot read plan %s: %v", name, raw, err)
	}
	used := false
	plans[0].Plan.walk(func(n planNode) {
		switch n.NodeType {
		case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
			used = used || index == "" || n.IndexName == index
		case "Sort", "Incremental Sort":
			if !sortAllowed {
				t.Errorf("%s: %s in the plan of %s", name, n.NodeType, stmt)
			}
		case "Seq Scan":
			if n.RelationName != "tenants" { // the handful of tenants, read one by one for a prefix across them
				t.Errorf("%s: %s on %s in the plan of %s", name, n.NodeType, n.RelationName, stmt)
			}
		}
	})
	if !used {
		t.Errorf("%s: no index scan of %q in plan %s", name, index, raw)
	}
}

type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// TestGroupedStatementsKeepTheirPlan: the grouped statements a busy instance sends must be planned once
// per connection, not on every execution. Postgres plans a prepared statement anew each time while it
// judges its generic plan dearer than the custom ones; for the rotation of a group of 8 that planning
// cost 3 to 6 times the execution.
func TestGroupedStatementsKeepTheirPlan(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	conn, err := s.SQLDB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, st := range []struct{ name, prepare, execute string }{
		{"rotate_group", `PREPARE rotate_group (timestamptz, bytea[], bytea[], timestamptz[], timestamptz[], timestamptz, int) AS ` + store.RotateBatchStatement,
			`EXECUTE rotate_group (now(), ARRAY['\x01', '\x02', '\x03', '\x04', '\x05', '\x06', '\x07', '\x08']::bytea[],
				ARRAY['\x11', '\x12', '\x13', '\x14', '\x15', '\x16', '\x17', '\x18']::bytea[], array_fill(now(), ARRAY[8]), array_fill(now(), ARRAY[8]), now(), 8)`},
		{"user_group", `PREPARE user_group (uuid[], int) AS ` + store.UsersByIDStatement,
			`EXECUTE user_group (ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid()], 4)`},
	} {
		if _, err := conn.ExecContext(ctx, st.prepare); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := conn.ExecContext(ctx, st.execute); err != nil {
				t.Fatal(err)
			}
		}
		var generic, custom int
		if err := conn.QueryRowContext(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1`, st.name).
			Scan(&generic, &custom); err != nil {
			t.Fatal(err)
		}
		if generic < 5 {
			t.Errorf("%s: %d of 10 executions used the cached generic plan (%d planned anew), want at least 5", st.name, generic, custom)
		}
	}
}
