package main

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
	"github.com/latch-auth/latch/migrations"
)

func TestMigrateStatusCommand(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		files, err := migrations.Dialect(string(d))
		if err != nil {
			t.Fatal(err)
		}
		sqlFiles, err := fs.Glob(files, "*.sql")
		if err != nil || len(sqlFiles) == 0 {
			t.Fatalf("no migrations found (%v)", err)
		}
		t.Setenv("LATCH_DATABASE_URL", storetest.URL(t, d))

		states := func() []string {
			t.Helper()
			stdout, stderr, err := runLatch(t, "migrate", "status")
			if err != nil {
				t.Fatalf("migrate status: %v\n%s", err, stderr)
			}
			var out []string
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			for _, line := range lines[1:] {
				f := strings.Fields(line)
				if len(f) < 3 {
					t.Fatalf("migrate status line %q", line)
				}
				out = append(out, f[0]+" "+f[2])
			}
			return out
		}
		want := func(state string) []string {
			var out []string
			for i := range sqlFiles {
				out = append(out, strings.TrimLeft(sqlFiles[i][:5], "0")+" "+state)
			}
			return out
		}

		if diff := cmp.Diff(want("pending"), states()); diff != "" {
			t.Errorf("status of an empty database (-want +got):\n%s", diff)
		}
		if _, stderr, err := runLatch(t, "migrate"); err != nil {
			t.Fatalf("migrate: %v\n%s", err, stderr)
		}
		if diff := cmp.Diff(want("applied"), states()); diff != "" {
			t.Errorf("status after migrate (-want +got):\n%s", diff)
		}
	})
}
