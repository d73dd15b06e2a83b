package token

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tenantIssuers is a settable IssuerOf for the tests: tenant id -> issuer.
type tenantIssuers struct {
	mu sync.Mutex
	m  map[string]string
}

var errNoTenant = errors.New("no such tenant")

func (ti *tenantIssuers) of(tid string) (string, error) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if iss, ok := ti.m[tid]; ok {
		return iss, nil
	}
	return "", errNoTenant
}

func (ti *tenantIssuers) set(tid, iss string) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.m[tid] = iss
}

func TestEachTenantHasItsOwnIssuer(t *testing.T) {
	tenants := &tenantIssuers{m: map[string]string{"acme": "https://auth.acme.test", "globex": "https://auth.globex.test"}}
	cfg := testConfig(ES256)
	cfg.IssuerOf = tenants.of
	key := mustKey(t, ES256, t0)
	now := t0
	iss := mustIssuer(t, cfg, []Key{key}, func() time.Time { return now })

	c := userClaims()
	c.TenantID = "acme"
	tok, _, err := iss.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeSegment(t, tok, 1)["iss"]; got != "https://auth.acme.test" {
		t.Errorf("iss = %v, want acme's issuer", got)
	}
	if _, err := iss.Verify(tok); err != nil {
		t.Fatalf("Verify of acme's own token: %v", err)
	}
	c.TenantID = "initech"
	if _, _, err := iss.Issue(c); !errors.Is(err, errNoTenant) {
		t.Errorf("Issue for an unknown tenant = %v, want its error", err)
	}

	signed := func(changes jwt.MapClaims) string {
		claims := validMapClaims()
		for k, v := range changes {
			claims[k] = v
		}
		return craft(t, jwt.SigningMethodES256, key.Private, map[string]any{"kid": key.ID}, claims)
	}
	for name, raw := range map[string]string{
		"another tenant's issuer":         signed(jwt.MapClaims{"tid": "acme", "iss": "https://auth.globex.test"}),
		"the deployment's default issuer": signed(jwt.MapClaims{"tid": "acme", "iss": testIssuer}),
		"an unknown tenant":               signed(jwt.MapClaims{"tid": "initech", "iss": "https://auth.acme.test"}),
		"no tenant":                       signed(jwt.MapClaims{"iss": "https://auth.acme.test"}),
		"expired and foreign": signed(jwt.MapClaims{"tid": "acme", "iss": "https://auth.globex.test",
			"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-30 * time.Minute).Unix()}),
	} {
		_, err := iss.Verify(raw)
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
			t.Errorf("%s: Verify = %v, want ErrInvalid (and not ErrExpired)", name, err)
		}
	}
	expired := signed(jwt.MapClaims{"tid": "globex", "iss": "https://auth.globex.test",
		"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-30 * time.Minute).Unix()})
	if _, err := iss.Verify(expired); !errors.Is(err, ErrExpired) {
		t.Errorf("an expired token of the right issuer: Verify = %v, want ErrExpired", err)
	}

	// The verified-token cache does not outlive a change of the tenant's issuer.
	tenants.set("acme", "https://new.acme.test")
	if _, err := iss.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("a cached token after its tenant's issuer changed: Verify = %v, want ErrInvalid", err)
	}
}
