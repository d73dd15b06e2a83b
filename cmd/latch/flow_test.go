package main

import (
	"net/http"
	"testing"

	"github.com/latch-auth/latch/internal/store"
)

func TestFlowEndToEnd(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		first := h.signup("Flow@Example.test", "correct horse battery")
		if first.TokenType != "Bearer" || first.ExpiresIn != 900 || first.RefreshExpiresIn != 7*24*3600 {
			t.Errorf("signup pair = %+v", first)
		}
		pair := h.login("flow@example.test", "correct horse battery")
		r := h.do(http.MethodGet, "/v2/auth/me", nil, bearer(pair.AccessToken)...)
		expect(t, r, http.StatusOK)
		var me struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"emailVerified"`
		}
		r.JSON(t, &me)
		if me.Email != "flow@example.test" || !me.EmailVerified {
			t.Errorf("me = %+v", me)
		}
		r = h.post("/v2/auth/refresh", map[string]string{"refreshToken": pair.RefreshToken})
		expect(t, r, http.StatusOK)
		var next tokenPair
		r.JSON(t, &next)
		if next.RefreshToken == pair.RefreshToken || next.RefreshToken == "" {
			t.Errorf("refresh did not rotate: %q", next.RefreshToken)
		}
	})
}
