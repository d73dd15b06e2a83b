package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
	"github.com/latch-auth/latch/internal/token"
	"github.com/latch-auth/latch/migrations"
)

// keysJWKS fetches the published key set and reads it with go-jose, a library independent of ours.
func keysJWKS(t *testing.T, h *harness) jose.JSONWebKeySet {
	t.Helper()
	r := h.do(http.MethodGet, "/.well-known/jwks.json", nil)
	expect(t, r, http.StatusOK)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS %s: %v", r.Body, err)
	}
	return set
}

// keysVerify checks an access token's signature with go-jose against the key given, returning the
// token's kid and its subject.
func keysVerify(t *testing.T, access, alg string, key func(kid string) any) (kid, sub string) {
	t.Helper()
	sig, err := jose.ParseSigned(access, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("go-jose cannot parse the access token: %v", err)
	}
	kid = sig.Signatures[0].Header.KeyID
	payload, err := sig.Verify(key(kid))
	if err != nil {
		t.Fatalf("go-jose rejects the signature of an access token with kid %q: %v", kid, err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return kid, claims.Sub
}

// keysFromSet looks a kid up in a published set; exactly one public key must match.
func keysFromSet(t *testing.T, set jose.JSONWebKeySet) func(kid string) any {
	return func(kid string) any {
		t.Helper()
		found := set.Key(kid)
		if len(found) != 1 {
			t.Fatalf("JWKS has %d keys with kid %q, want 1", len(found), kid)
		}
		if !found[0].IsPublic() || !found[0].Valid() {
			t.Fatalf("JWKS key %q is not a valid public key", kid)
		}
		return found[0].Key
	}
}

func TestJWKSVerifiesAccessTokens(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.Algorithm = alg })
			p := h.signup("jwks@example.test", sessPassword)
			set := keysJWKS(t, h)
			_, sub := keysVerify(t, p.AccessToken, alg, keysFromSet(t, set))
			if sub != sessClaim(t, p.AccessToken, "sub") {
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
		h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.Algorithm = "HS256" })
		p := h.signup("hmac@example.test", sessPassword)
		header, _ := sessJWT(t, p.AccessToken)
		if header["alg"] != "HS256" {
			t.Fatalf("alg = %v, want HS256", header["alg"])
		}
		expect(t, h.do(http.MethodGet, "/v2/auth/me", nil, bearer(p.AccessToken)...), http.StatusOK)
		if set := keysJWKS(t, h); len(set.Keys) != 0 {
			t.Errorf("HS256 published %d keys; a shared secret must never be published", len(set.Keys))
		}
	})
}

func TestSecondInstanceSharesKeysAndSecrets(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h1 := newHarness(t, d)
		const email = "restart@example.test"
		p := h1.signup(email, sessPassword)
		h2 := startHarness(t, h1.cfg, h1.smtp, h1.clock)

		if diff := cmp.Diff(sessJWKSKids(t, h1), sessJWKSKids(t, h2)); diff != "" {
			t.Errorf("the second instance publishes other keys (-first +second):\n%s", diff)
		}
		expect(t, h2.do(http.MethodGet, "/v2/auth/me", nil, bearer(p.AccessToken)...), http.StatusOK)

		// The replay on the first instance finds the successor only if both derive it under the
		// same refresh secret.
		next := sessRotate(t, h2, p.RefreshToken)
		replay := sessRotate(t, h1, p.RefreshToken)
		if replay.RefreshToken != next.RefreshToken {
			t.Error("the two instances derive different successors: the refresh secret was not shared")
		}

		// A code emailed by one instance is checked by the other under the same code secret.
		h1.clock.Advance(h1.cfg.Codes.ResendCooldown + time.Second)
		expect(t, h1.post("/v2/auth/login", map[string]string{"email": email, "password": sessPassword}), http.StatusOK)
		r := h2.post("/v2/auth/validate-login", map[string]string{"email": email, "emailToken": h1.codeFor(email)})
		expect(t, r, http.StatusOK)
	})
}

// keysRun runs the latch command line as an operator would, returning its error and output.
func keysRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestKeysRotateCommand(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		ctx := context.Background()
		old := h.signup("rotate@example.test", sessPassword)
		oldKid, _ := sessJWT(t, old.AccessToken)

		t.Setenv("LATCH_DATABASE_URL", h.cfg.Database.URL)
		stdout, stderr, err := keysRun(t, "keys", "rotate")
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

		expect(t, h.do(http.MethodGet, "/v2/auth/me", nil, bearer(old.AccessToken)...), http.StatusOK)
		if err := h.app.Keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		expect(t, h.do(http.MethodGet, "/v2/auth/me", nil, bearer(old.AccessToken)...), http.StatusOK)
		fresh := h.login("rotate@example.test", sessPassword)
		set := keysJWKS(t, h)
		if kid, _ := keysVerify(t, fresh.AccessToken, "ES256", keysFromSet(t, set)); kid != newKid {
			t.Errorf("after the reload tokens carry kid %q, want the new %q", kid, newKid)
		}
		keysVerify(t, old.AccessToken, "ES256", keysFromSet(t, set))
		kids := sessJWKSKids(t, h)
		if !slices.Contains(kids, newKid) || !slices.Contains(kids, oldKid["kid"].(string)) {
			t.Errorf("JWKS kids %v, want both the old %v and the new %s", kids, oldKid["kid"], newKid)
		}

		// The rotation retired the old key: once every token it signed has expired (plus a
		// margin), a reload drops it. The command stamps retired_at with the real clock, which
		// the test clock started from.
		h.clock.Advance(h.cfg.Tokens.AccessTTL + 15*time.Minute)
		if err := h.app.Keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{newKid}, sessJWKSKids(t, h)); diff != "" {
			t.Errorf("JWKS kids long after the rotation (-want +got):\n%s", diff)
		}
	})
}

func TestSigningKeyFromFile(t *testing.T) {
	key, err := token.GenerateKey("ES256", rand.Reader, newClock().Now())
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
	h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.SigningKeyFile = path })
	p := h.signup("file@example.test", sessPassword)

	public := &key.Private.(*ecdsa.PrivateKey).PublicKey
	kid, _ := keysVerify(t, p.AccessToken, "ES256", func(string) any { return public })
	if diff := cmp.Diff([]string{kid}, sessJWKSKids(t, h)); diff != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", diff)
	}
	keysVerify(t, p.AccessToken, "ES256", keysFromSet(t, keysJWKS(t, h)))

	t.Setenv("LATCH_DATABASE_URL", h.cfg.Database.URL)
	t.Setenv("LATCH_TOKENS_SIGNING_KEY_FILE", path)
	_, _, err = keysRun(t, "keys", "rotate")
	if !errors.Is(err, auth.ErrFixedKey) {
		t.Fatalf("keys rotate with a key file: err = %v, want auth.ErrFixedKey", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
}

func TestMigrateStatusCommand(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
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
			stdout, stderr, err := keysRun(t, "migrate", "status")
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
		if _, stderr, err := keysRun(t, "migrate"); err != nil {
			t.Fatalf("migrate: %v\n%s", err, stderr)
		}
		if diff := cmp.Diff(want("applied"), states()); diff != "" {
			t.Errorf("status after migrate (-want +got):\n%s", diff)
		}
	})
}

func TestCommandLineHelpAndVersion(t *testing.T) {
	stdout, _, err := keysRun(t, "version")
	if err != nil || stdout != "latch "+version+"\n" {
		t.Errorf("latch version: err %v, output %q", err, stdout)
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"migrate", "-h"}, {"keys", "--help"}} {
		stdout, stderr, err := keysRun(t, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("latch %v: %v", args, err)
		}
		if err != nil && exitCode(err) != 0 {
			t.Errorf("latch %v exits %d, want 0", args, exitCode(err))
		}
		if !strings.Contains(stdout+stderr, "Usage") {
			t.Errorf("latch %v printed no usage: %q", args, stdout+stderr)
		}
	}
	_, _, err = keysRun(t, "frobnicate")
	var u usageError
	if !errors.As(err, &u) || exitCode(err) != 2 {
		t.Errorf("an unknown command: err %v, exit %d; want a usage error, exit 2", err, exitCode(err))
	}
}
