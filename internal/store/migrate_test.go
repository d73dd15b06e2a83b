package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestTenantSlugMigrationCarriesExistingData writes rows the way Latch did while tenant ids were
// uuids and the default tenant was the nil uuid, then migrates to the end: every row, foreign key, the
// per-tenant email index and the throttle subjects must come across to the slug ids.
func TestTenantSlugMigrationCarriesExistingData(t *testing.T) {
	const nilTenant, legacyTenant = "00000000-0000-0000-0000-000000000000", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	const ann, bob = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	const session = "33333333-3333-4333-8333-333333333333"
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenAt(t, d, 6)
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			s.Now = func() time.Time { return now }
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.SQLDB().ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`INSERT INTO tenants (id, name) VALUES ($1, 'legacy')`, legacyTenant)
			exec(`INSERT INTO users (id, tenant_id, email, password_hash, status, created_at, updated_at)
				VALUES ($1, $2, 'ann@example.test', 'ann-hash', 'active', $4, $4), ($3, $5, 'ann@example.test', 'bob-hash', 'active', $4, $4)`,
				ann, nilTenant, bob, now, legacyTenant)
			exec(`INSERT INTO sessions (id, user_id, tenant_id, amr, created_at, last_used_at, idle_expires_at, expires_at)
				VALUES ($1, $2, $3, 'pwd otp', $4, $4, $5, $6)`, session, ann, nilTenant, now, now.Add(time.Hour), now.Add(24*time.Hour))
			exec(`INSERT INTO refresh_tokens (session_id, token_hash, created_at) VALUES ($1, $2, $3)`, session, authtest.Hash("old-token"), now)
			exec(`INSERT INTO login_failures (subject, ip, failures, last_failure_at, locked_until) VALUES
				($1, '10.0.0.1', 7, $3, $4), ($2, '', 3, $3, NULL)`,
				nilTenant+":ann@example.test", legacyTenant+":ann@example.test", now, now.Add(time.Minute))

			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}

			var ids []string
			tenants, err := s.ListTenants(ctx, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range tenants {
				ids = append(ids, x.ID+"="+x.Name)
				if diff := cmp.Diff(auth.DefaultTenantSettings(), x.Settings); diff != "" {
					t.Errorf("migrated tenant %s settings (-want +got):\n%s", x.ID, diff)
				}
			}
			if diff := cmp.Diff([]string{"7c9e6679-7425-40de-944b-e07fc1f90ae7=legacy", "default=default"}, ids); diff != "" {
				t.Errorf("tenants after the migration (-want +got):\n%s", diff)
			}
			for tenant, want := range map[string]string{auth.DefaultTenantID: ann, legacyTenant: bob} {
				c, err := s.UserByEmail(ctx, tenant, "Ann@Example.Test")
				if err != nil || c.User.ID != want || c.User.TenantID != tenant || c.User.Role != auth.DefaultRole || string(c.User.Metadata) != "{}" {
					t.Errorf("UserByEmail(%s) = %+v, %v; want user %s with the default role and metadata", tenant, c, err, want)
				}
			}
			if err := s.CreateUser(ctx, &auth.User{TenantID: auth.DefaultTenantID, Email: "ANN@example.test"}, "x", auth.Event{}); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("a second ann in the default tenant: %v, want ErrConflict (the per-tenant email index)", err)
			}
			if err := s.CreateUser(ctx, &auth.User{TenantID: nilTenant, Email: "new@example.test"}, "x", auth.Event{}); err == nil {
				t.Error("a user of the old nil-uuid tenant was created: the foreign key did not come across")
			}
			if err := s.DeleteTenant(ctx, legacyTenant, false, auth.Event{}); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("deleting the legacy tenant with its user: %v, want ErrConflict", err)
			}

			sess, err := s.SessionForRefresh(ctx, authtest.Hash("old-token"))
			if err != nil || sess.TenantID != auth.DefaultTenantID {
				t.Errorf("migrated session = %+v, %v; want the default tenant's", sess, err)
			}
			r, err := s.Rotate(ctx, authtest.Hash("old-token"), authtest.Hash("new-token"), time.Hour)
			want := auth.Rotated{SessionID: session, UserID: ann, TenantID: auth.DefaultTenantID, Email: "ann@example.test",
				Role: auth.DefaultRole, AMR: "pwd otp", ExpiresAt: now.Add(24 * time.Hour), SessionStart: now}
			if err != nil || !cmp.Equal(want, r) {
				t.Errorf("rotating a token issued before the migration = %+v, %v; want %+v", r, err, want)
			}

			for subject, wait := range map[string]time.Duration{"default:ann@example.test": time.Minute, legacyTenant + ":ann@example.test": 0} {
				got, err := s.LockedUntil(ctx, subject, "10.0.0.1")
				if err != nil || got != wait {
					t.Errorf("LockedUntil(%s) = %v, %v; want %v", subject, got, err, wait)
				}
			}
			var stale int
			if err := s.SQLDB().QueryRowContext(ctx, `SELECT count(*) FROM login_failures WHERE subject LIKE '00000000-%'`).Scan(&stale); err != nil || stale != 0 {
				t.Errorf("%d throttle rows still name the nil-uuid tenant (%v)", stale, err)
			}
		})
	}
}
