package apptest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// JWKS fetches the published key set and reads it with go-jose, a library independent of Latch's.
func (in *Instance) JWKS(t testing.TB) jose.JSONWebKeySet {
	t.Helper()
	r := in.Get(t, "/.well-known/jwks.json")
	WantStatus(t, r, http.StatusOK)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS %s: %v", r.Body, err)
	}
	return set
}

// JWKSKids lists the kids the instance publishes, in its order.
func (in *Instance) JWKSKids(t testing.TB) []string {
	t.Helper()
	set := in.JWKS(t)
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// VerifySignature checks an access token's signature with go-jose against the key that key returns
// for its kid, returning the kid and the token's subject.
func VerifySignature(t testing.TB, access, alg string, key func(kid string) any) (kid, sub string) {
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

// KeyFromSet looks a kid up in a published set for VerifySignature; exactly one valid public key
// must match.
func KeyFromSet(t testing.TB, set jose.JSONWebKeySet) func(kid string) any {
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
