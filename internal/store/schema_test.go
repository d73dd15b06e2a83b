package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// The two dialects' migrations are written by hand, side by side. This test migrates both and
// compares what they made: every table, column and nullability, and every index with its columns,
// uniqueness and whether it is partial. Column types differ by design (uuid/text, timestamptz/datetime)
// and are not compared; index names are not either, since SQLite names the indexes of UNIQUE
// constraints itself.

type schemaColumn struct {
	Table, Name string
	Nullable    bool
}

type schemaIndex struct {
	Table   string
	Columns string // comma separated; an expression is "expr"
	Unique  bool
	Partial bool
}

type schema struct {
	Columns []schemaColumn
	Indexes []schemaIndex
}

func (s *schema) sort() {
	slices.SortFunc(s.Columns, func(a, b schemaColumn) int { return strings.Compare(a.Table+"."+a.Name, b.Table+"."+b.Name) })
	slices.SortFunc(s.Indexes, func(a, b schemaIndex) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func postgresSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	ctx := context.Background()
	var out schema
	rows, err := db.QueryContext(ctx, `SELECT c.table_name, c.column_name,
			c.is_nullable = 'YES' AND NOT EXISTS (
				SELECT 1 FROM information_schema.table_constraints tc
				JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name AND k.table_name = tc.table_name
				WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = c.table_name AND k.column_name = c.column_name)
		FROM information_schema.columns c
		WHERE c.table_schema = 'public' AND c.table_name <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c schemaColumn
		if err := rows.Scan(&c.Table, &c.Name, &c.Nullable); err != nil {
			t.Fatal(err)
		}
		out.Columns = append(out.Columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	irows, err := db.QueryContext(ctx, `SELECT t.relname, ix.indexrelid, ix.indnatts, ix.indisunique, ix.indpred IS NOT NULL
		FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = 'public' AND NOT ix.indisprimary AND t.relname <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	type pgIndex struct {
		table   string
		oid     int64
		natts   int
		unique  bool
		partial bool
	}
	var found []pgIndex
	for irows.Next() {
		var ix pgIndex
		if err := irows.Scan(&ix.table, &ix.oid, &ix.natts, &ix.unique, &ix.partial); err != nil {
			t.Fatal(err)
		}
		found = append(found, ix)
	}
	irows.Close()
	for _, ix := range found {
		var cols []string
		for k := 1; k <= ix.natts; k++ {
			var def string
			if err := db.QueryRowContext(ctx, `SELECT pg_get_indexdef($1, $2, true)`, ix.oid, k).Scan(&def); err != nil {
				t.Fatal(err)
			}
			if !plainIdent.MatchString(def) {
				def = "expr"
			}
			cols = append(cols, def)
		}
		out.Indexes = append(out.Indexes, schemaIndex{Table: ix.table, Columns: strings.Join(cols, ","), Unique: ix.unique, Partial: ix.partial})
	}
	out.sort()
	return out
}

func sqliteSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	var out schema
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('sqlite_sequence', 'goose_db_version')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, table := range tables {
		cols, err := db.Query(`SELECT name, "notnull", pk FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for cols.Next() {
			var name string
			var notNull, pk int
			if err := cols.Scan(&name, &notNull, &pk); err != nil {
				t.Fatal(err)
			}
			// A primary key never holds NULL in Latch's rows, whatever SQLite would allow.
			out.Columns = append(out.Columns, schemaColumn{Table: table, Name: name, Nullable: notNull == 0 && pk == 0})
		}
		cols.Close()
		type sqliteIndex struct {
			name            string
			unique, partial bool
		}
		var idx []sqliteIndex
		list, err := db.Query(`SELECT name, "unique", partial FROM pragma_index_list(?) WHERE origin <> 'pk'`, table)
		if err != nil {
			t.Fatal(err)
		}
		for list.Next() {
			var ix sqliteIndex
			if err := list.Scan(&ix.name, &ix.unique, &ix.partial); err != nil {
				t.Fatal(err)
			}
			idx = append(idx, ix)
		}
		list.Close()
		for _, ix := range idx {
			info, err := db.Query(`SELECT cid, coalesce(name, '') FROM pragma_index_info(?) ORDER BY seqno`, ix.name)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for info.Next() {
				var cid int
				var name string
				if err := info.Scan(&cid, &name); err != nil {
					t.Fatal(err)
				}
				if cid < 0 {
					name = "expr"
				}
				names = append(names, name)
			}
			info.Close()
			out.Indexes = append(out.Indexes, schemaIndex{Table: table, Columns: strings.Join(names, ","), Unique: ix.unique, Partial: ix.partial})
		}
	}
	out.sort()
	return out
}

func TestDialectsMigrateToTheSameSchema(t *testing.T) {
	pg := postgresSchema(t, storetest.Open(t, store.Postgres).SQLDB())
	lite := sqliteSchema(t, storetest.Open(t, store.SQLite).SQLDB())
	if len(pg.Columns) == 0 || len(pg.Indexes) == 0 {
		t.Fatalf("read no schema from Postgres: %+v", pg)
	}
	if diff := cmp.Diff(pg, lite); diff != "" {
		t.Errorf("schemas differ (-postgres +sqlite):\n%s", diff)
	}
}
