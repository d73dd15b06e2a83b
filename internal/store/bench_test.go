package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// chainHash is the stored hash of link n of chain: the benchmarks need distinct hashes, not tokens.
func chainHash(chain string, n int) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", chain, n))
	return sum[:]
}

// benchSession opens a session whose first refresh token is link 0 of chain.
func benchSession(s *store.Store, userID, chain string) error {
	_, err := s.OpenSession(context.Background(), auth.NewSession{UserID: userID, TenantID: auth.DefaultTenantID, AMR: "pwd otp", RefreshRotation: true,
		IdleTTL: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour, RefreshHash: chainHash(chain, 0)})
	return err
}

// benchRotate measures one refresh rotation, the hot write of the service: a single session whose
// chain grows by one link per iteration, and the same with every goroutine rotating its own chain.
func benchRotate(b *testing.B, d store.Dialect) {
	s := storetest.Open(b, d)
	ctx := context.Background()
	u := auth.User{Email: "bench@example.test"}
	if err := s.CreateUser(ctx, &u, "x", auth.Event{}); err != nil {
		b.Fatal(err)
	}

	// Every run of a sub-benchmark starts fresh chains: hashes are unique across the whole table.
	var chains atomic.Int64
	b.Run("chain", func(b *testing.B) {
		chain := fmt.Sprintf("chain-%d", chains.Add(1))
		if err := benchSession(s, u.ID, chain); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.Rotate(ctx, chainHash(chain, i), chainHash(chain, i+1), 24*time.Hour); err != nil {
				b.Fatalf("rotation %d: %v", i, err)
			}
		}
	})

	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			chain := fmt.Sprintf("parallel-%d", chains.Add(1))
			if err := benchSession(s, u.ID, chain); err != nil {
				b.Error(err)
				return
			}
			for i := 0; pb.Next(); i++ {
				if _, err := s.Rotate(ctx, chainHash(chain, i), chainHash(chain, i+1), 24*time.Hour); err != nil {
					b.Errorf("rotation %d of %s: %v", i, chain, err)
					return
				}
			}
		})
	})
}

func BenchmarkRotate(b *testing.B) { benchRotate(b, store.Postgres) }

// BenchmarkRotateGroup measures the grouped rotation a busy Postgres instance sends: one statement and
// one commit for a group of 8 chains' rotations, and the grouped statement with one rotation (which
// the service never sends alone: a group of one takes BenchmarkRotate's statement). ns/op is per
// statement; ns/rotation divides it by the group.
func BenchmarkRotateGroup(b *testing.B) {
	s := storetest.Open(b, store.Postgres)
	ctx := context.Background()
	u := auth.User{Email: "bench@example.test"}
	if err := s.CreateUser(ctx, &u, "x", auth.Event{}); err != nil {
		b.Fatal(err)
	}
	var chains atomic.Int64
	for _, size := range []int{8, 1} {
		b.Run(fmt.Sprintf("group-%d", size), func(b *testing.B) {
			if size == 1 {
				s.GroupStatements()
			}
			names := make([]string, size)
			for i := range names {
				names[i] = fmt.Sprintf("group-%d", chains.Add(1))
				if err := benchSession(s, u.ID, names[i]); err != nil {
					b.Fatal(err)
				}
			}
			in := make([]store.Rotation, size)
			b.ResetTimer()
			for n := range b.N {
				for i, chain := range names {
					in[i] = store.Rotation{OldHash: chainHash(chain, n), NewHash: chainHash(chain, n+1), IdleTTL: 24 * time.Hour}
				}
				_, errs, err := s.RotateGroup(ctx, in)
				if err == nil {
					err = errors.Join(errs...)
				}
				if err != nil {
					b.Fatalf("group %d: %v", n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/rotation")
		})
	}
}

func BenchmarkRotateSQLite(b *testing.B) { benchRotate(b, store.SQLite) }

// BenchmarkUserByID measures the read behind GET me on Postgres, which also tells whether the user's
// authenticator is on (a primary-key probe of totp_factors in the same statement).
func BenchmarkUserByID(b *testing.B) {
	s := storetest.Open(b, store.Postgres)
	ctx := context.Background()
	plain, withTOTP := auth.User{Email: "plain@example.test"}, auth.User{Email: "totp@example.test"}
	for _, u := range []*auth.User{&plain, &withTOTP} {
		if err := s.CreateUser(ctx, u, "x", auth.Event{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SetPendingTOTP(ctx, withTOTP.ID, []byte("sealed"), auth.Event{}); err != nil {
		b.Fatal(err)
	}
	if err := s.EnableTOTP(ctx, auth.EnableTOTP{UserID: withTOTP.ID, Sealed: []byte("sealed"), Step: 1}); err != nil {
		b.Fatal(err)
	}
	for _, u := range []auth.User{plain, withTOTP} {
		b.Run(u.Email, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.UserByID(ctx, u.ID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
