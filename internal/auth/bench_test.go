package auth_test

import (
	"context"
	"testing"

	"github.com/latch-auth/latch/internal/auth"
)

// BenchmarkAuthenticate is the stateless check of me and verify as the service makes it: the token
// verification (cached after its first full check) and its tenant's issuer, from the directory's
// cache. The "default" and "tenant" cases differ only in where the token's tenant comes from.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Acme"), Issuer: ptr("https://auth.acme.test"),
		SecondStep: ptr(auth.SecondStepOff)}); err != nil {
		b.Fatal(err)
	}
	if _, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: "bench@example.test", Password: pw, TenantID: "acme"}); err != nil {
		b.Fatal(err)
	}
	acme, err := f.svc.SignIn(ctx, auth.SignInInput{Email: "bench@example.test", Password: pw, TenantID: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	for name, tok := range map[string]string{"default": f.signup("ann@example.test").AccessToken, "tenant": acme.AccessToken} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.svc.Authenticate(ctx, tok, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
