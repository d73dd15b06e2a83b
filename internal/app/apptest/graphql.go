package apptest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// GraphQLResult is a GraphQL answer: data by top-level field, and the top-level errors.
type GraphQLResult struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []GraphQLError             `json:"errors"`
}

// GraphQLError is one top-level GraphQL error.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code.
func (e GraphQLError) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// GraphQL posts an operation to /graphql and decodes the answer, which must be JSON and must not be
// a 5xx whatever was sent.
func (in *Instance) GraphQL(t testing.TB, query string, variables map[string]any, headers ...string) (Response, GraphQLResult) {
	t.Helper()
	return in.GraphQLAt(t, "/graphql", query, variables, headers...)
}

// GraphQLAt posts an operation to a GraphQL path, such as a tenant's /t/{id}/graphql.
func (in *Instance) GraphQLAt(t testing.TB, path, query string, variables map[string]any, headers ...string) (Response, GraphQLResult) {
	t.Helper()
	body := map[string]any{"query": query}
	if variables != nil {
		body["variables"] = variables
	}
	return in.graphQLPost(t, path, body, headers...)
}

// GraphQLRaw posts any body to /graphql (a Raw is sent byte for byte) and decodes the answer.
func (in *Instance) GraphQLRaw(t testing.TB, body any, headers ...string) (Response, GraphQLResult) {
	t.Helper()
	return in.graphQLPost(t, "/graphql", body, headers...)
}

func (in *Instance) graphQLPost(t testing.TB, path string, body any, headers ...string) (Response, GraphQLResult) {
	t.Helper()
	r := in.Post(t, path, body, headers...)
	if r.Status >= http.StatusInternalServerError {
		t.Fatalf("POST %s answered %d: %s", path, r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s: Content-Type = %q, want application/json; body %s", path, ct, r.Body)
	}
	var res GraphQLResult
	if len(r.Body) > 0 && r.Body[0] == '{' {
		r.JSON(t, &res)
	}
	return r, res
}

// Field decodes one top-level field of the data into v.
func (g GraphQLResult) Field(t testing.TB, name string, v any) {
	t.Helper()
	raw, ok := g.Data[name]
	if !ok {
		t.Fatalf("no %q in the data; errors %+v", name, g.Errors)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// WantGraphQLError fails the test unless the answer has exactly one top-level error, with the code,
// and returns it.
func WantGraphQLError(t testing.TB, g GraphQLResult, code string) GraphQLError {
	t.Helper()
	if len(g.Errors) != 1 || g.Errors[0].Code() != code {
		t.Fatalf("errors = %+v, want one with code %s", g.Errors, code)
	}
	return g.Errors[0]
}

// JWT is the Authorization header pair in Saleor's spelling.
func JWT(access string) []string { return []string{"Authorization", "JWT " + access} }

// EventCount is how many security events of a kind the instance has recorded.
func (in *Instance) EventCount(t testing.TB, kind string) int {
	t.Helper()
	rows, err := in.App.Store.SQLDB().Query(`SELECT kind FROM security_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		if k == kind {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
