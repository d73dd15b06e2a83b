package apptest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/latch-auth/latch/internal/auth"
)

// Operator is the caller of the service methods apptest runs as an operator would.
var Operator = auth.CommandLine("apptest")

// Settings builds a tenant's settings input; fields left nil keep their defaults.
type Settings = auth.TenantInput

// CreateTenant makes a tenant through the service, as the command line does.
func (in *Instance) CreateTenant(t testing.TB, id string, s Settings) auth.Tenant {
	t.Helper()
	if s.Name == nil {
		s.Name = &id
	}
	tenant, err := in.App.Service.CreateTenant(context.Background(), Operator, id, s)
	if err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
	return tenant
}

// CreateAccount makes a verified, active account in a tenant ("" for the default), as an operator
// does: no code email is sent.
func (in *Instance) CreateAccount(t testing.TB, tenant, email, password string) auth.User {
	t.Helper()
	u, err := in.App.Service.CreateAccount(context.Background(), auth.NewAccount{Email: email, Password: password, TenantID: tenant, Actor: "apptest"})
	if err != nil {
		t.Fatalf("create account %s in tenant %q: %v", email, tenant, err)
	}
	return u
}

// Ptr is a pointer to v, for the optional fields of Settings.
func Ptr[T any](v T) *T { return &v }

// Routes is a JSON object for Settings.Routes.
func Routes(t testing.TB, routes map[string]string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(routes)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
