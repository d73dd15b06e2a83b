package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

func TestKeysRotateCommand(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		ctx := context.Background()
		old := h.Signup(t, "rotate@example.test", apptest.Password)
		oldKid, _ := apptest.DecodeJWT(t, old.AccessToken)

		t.Setenv("LATCH_DATABASE_URL", h.Config.Database.URL)
		t.Setenv("LATCH_SECRETS_ENCRYPTION_KEY", apptest.EncryptionKey)
		stdout, stderr, err := runLatch(t, "keys", "rotate")
		if err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, stderr)
		}
		fields := strings.Fields(stdout)
		if len(fields) < 4 {
			t.Fatalf("keys rotate printed %q, want the new kid", stdout)
		}
		newKid := fields[3]
		if newKid == oldKid["kid"] {
			t.Fatalf("keys rotate kept kid %q", newKid)
		}

		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", apptest.Bearer(old.AccessToken)...), http.StatusOK)
		if err := h.App.Keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", apptest.Bearer(old.AccessToken)...), http.StatusOK)
		fresh := h.Login(t, "rotate@example.test", apptest.Password)
		set := h.JWKS(t)
		if kid, _ := apptest.VerifySignature(t, fresh.AccessToken, "ES256", apptest.KeyFromSet(t, set)); kid != newKid {
			t.Errorf("after the reload tokens carry kid %q, want the new %q", kid, newKid)
		}
		apptest.VerifySignature(t, old.AccessToken, "ES256", apptest.KeyFromSet(t, set))
		kids := h.JWKSKids(t)
		if !slices.Contains(kids, newKid) || !slices.Contains(kids, oldKid["kid"].(string)) {
			t.Errorf("JWKS kids %v, want both the old %v and the new %s", kids, oldKid["kid"], newKid)
		}

		// The rotation retired the old key: once every token it signed has expired (plus a
		// margin), a reload drops it. The command stamps retired_at with the real clock, which
		// the test clock started from.
		h.Clock.Advance(h.Config.Tokens.AccessTTL + 15*time.Minute)
		if err := h.App.Keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{newKid}, h.JWKSKids(t)); diff != "" {
			t.Errorf("JWKS kids long after the rotation (-want +got):\n%s", diff)
		}
	})
}

func TestSigningKeyFromFile(t *testing.T) {
	key, err := token.GenerateKey("ES256", rand.Reader, apptest.NewClock().Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := token.MarshalPrivate(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.SigningKeyFile = path })
	p := h.Signup(t, "file@example.test", apptest.Password)

	public := &key.Private.(*ecdsa.PrivateKey).PublicKey
	kid, _ := apptest.VerifySignature(t, p.AccessToken, "ES256", func(string) any { return public })
	if diff := cmp.Diff([]string{kid}, h.JWKSKids(t)); diff != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", diff)
	}
	apptest.VerifySignature(t, p.AccessToken, "ES256", apptest.KeyFromSet(t, h.JWKS(t)))

	t.Setenv("LATCH_DATABASE_URL", h.Config.Database.URL)
	t.Setenv("LATCH_SECRETS_ENCRYPTION_KEY", apptest.EncryptionKey)
	t.Setenv("LATCH_TOKENS_SIGNING_KEY_FILE", path)
	_, _, err = runLatch(t, "keys", "rotate")
	if !errors.Is(err, auth.ErrFixedKey) {
		t.Fatalf("keys rotate with a key file: err = %v, want auth.ErrFixedKey", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
}
