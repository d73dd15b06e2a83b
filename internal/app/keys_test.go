package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

func TestJWKSVerifiesAccessTokens(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.Algorithm = alg })
			p := h.Signup(t, "jwks@example.test", apptest.Password)
			set := h.JWKS(t)
			_, sub := apptest.VerifySignature(t, p.AccessToken, alg, apptest.KeyFromSet(t, set))
			if sub != apptest.Claim(t, p.AccessToken, "sub") {
				t.Errorf("verified subject %q differs from the token's", sub)
			}
			for _, k := range set.Keys {
				if k.Algorithm != alg || k.Use != "sig" {
					t.Errorf("published key %s has alg %q use %q, want %s sig", k.KeyID, k.Algorithm, k.Use, alg)
				}
			}
		})
	}

	t.Run("HS256", func(t *testing.T) {
		h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.Algorithm = "HS256" })
		p := h.Signup(t, "hmac@example.test", apptest.Password)
		header, _ := apptest.DecodeJWT(t, p.AccessToken)
		if header["alg"] != "HS256" {
			t.Fatalf("alg = %v, want HS256", header["alg"])
		}
		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", apptest.Bearer(p.AccessToken)...), http.StatusOK)
		if set := h.JWKS(t); len(set.Keys) != 0 {
			t.Errorf("HS256 published %d keys; a shared secret must never be published", len(set.Keys))
		}
	})
}

func TestSecondInstanceSharesKeysAndSecrets(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h1 := apptest.New(t, d)
		const email = "restart@example.test"
		p := h1.Signup(t, email, apptest.Password)
		h2 := h1.StartPeer(t)

		if diff := cmp.Diff(h1.JWKSKids(t), h2.JWKSKids(t)); diff != "" {
			t.Errorf("the second instance publishes other keys (-first +second):\n%s", diff)
		}
		apptest.WantStatus(t, h2.Get(t, "/v2/auth/me", apptest.Bearer(p.AccessToken)...), http.StatusOK)

		// The replay on the first instance finds the successor only if both derive it under the
		// same refresh secret.
		next := h2.Rotate(t, p.RefreshToken)
		replay := h1.Rotate(t, p.RefreshToken)
		if replay.RefreshToken != next.RefreshToken {
			t.Error("the two instances derive different successors: the refresh secret was not shared")
		}

		// A code emailed by one instance is checked by the other under the same code secret.
		h1.Clock.Advance(h1.Config.Codes.ResendCooldown + time.Second)
		apptest.WantStatus(t, h1.LoginStep(t, email, apptest.Password), http.StatusOK)
		r := h2.Post(t, "/v2/auth/validate-login", apptest.EmailCode(email, h1.CodeFor(t, email)))
		apptest.WantStatus(t, r, http.StatusOK)
	})
}
