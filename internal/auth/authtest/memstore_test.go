package authtest_test

import (
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
)

func TestMemStore(t *testing.T) {
	authtest.StoreSuite(t, func(t *testing.T, now func() time.Time) auth.Store { return authtest.NewMemStore(now) })
}
