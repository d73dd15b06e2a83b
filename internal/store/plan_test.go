package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

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
	if _, err := conn.ExecContext(ctx, `PREPARE rotate_plan (timestamptz, bytea, bytea, timestamptz, timestamptz, timestamptz) AS `+store.RotateStatement); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		var raw []byte
		err := conn.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) EXECUTE rotate_plan (now(), '\x00', '\x01', now(), now(), now())`).Scan(&raw)
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
