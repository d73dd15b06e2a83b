package app_test

import (
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

func TestFlowEndToEnd(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		first := h.Signup(t, "Flow@Example.test", apptest.Password)
		if first.TokenType != "Bearer" || first.ExpiresIn != 900 || first.RefreshExpiresIn != 7*24*3600 {
			t.Errorf("signup pair = %+v", first)
		}
		pair := h.Login(t, "flow@example.test", apptest.Password)
		if me := h.Me(t, pair.AccessToken); me.Email != "flow@example.test" || !me.EmailVerified {
			t.Errorf("me = %+v", me)
		}
		h.Rotate(t, pair.RefreshToken)
	})
}
