package graphql

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/config"
)

// noThrottle stands in for the per-IP bucket: never empty.
func noThrottle(next echo.HandlerFunc) echo.HandlerFunc { return next }

// hostileQueries are the most expensive documents found for the parser, the validator and the guard,
// each within the 64 KiB body limit. None reaches a resolver: every one is refused.
func hostileQueries() map[string]string {
	var bomb strings.Builder
	bomb.WriteString("query { me { ...F0 } }\n")
	for i := range 40 {
		fmt.Fprintf(&bomb, "fragment F%d on User { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	bomb.WriteString("fragment F40 on User { id }\n")
	var wideBomb strings.Builder
	wideBomb.WriteString("query { me { ...W0 } }\n")
	for i := range 40 {
		fmt.Fprintf(&wideBomb, "fragment W%d on User { ...W%d ...W%d id id id id id a: email }\n", i, i+1, i+1)
	}
	wideBomb.WriteString("fragment W40 on User { id }\n")
	var distinctFragments strings.Builder
	distinctFragments.WriteString("query { me { ")
	for i := range 600 {
		fmt.Fprintf(&distinctFragments, "...G%d ", i)
	}
	distinctFragments.WriteString("} }\n")
	for i := range 600 {
		fmt.Fprintf(&distinctFragments, "fragment G%d on User { id }\n", i)
	}
	return map[string]string{
		"same field repeated":   "{ me {" + strings.Repeat(" id", 4990) + " } }",
		"typename repeated":     "{" + strings.Repeat(" __typename", 4995) + " }",
		"unknown fields":        "{" + strings.Repeat(" nope", 4995) + " }",
		"aliases":               "{" + strings.Repeat(" a: __typename", 1660) + " }",
		"fragment fan-out":      bomb.String(),
		"wide fragment fan-out": wideBomb.String(),
		"many fragments":        distinctFragments.String(),
		"nested lists":          "{" + strings.Repeat(" __schema { types { fields { type { name } } } }", 200) + " }",
		"deep introspection":    `{ __type(name: "User") {` + strings.Repeat(" ofType {", 2400) + " name" + strings.Repeat(" }", 2401) + " }",
		"tokens over the limit": "{ me {" + strings.Repeat(" id", 20000) + " } }",
	}
}

func hostileSurface() *echo.Echo {
	d := config.Default().GraphQL
	s := New(Options{Explorer: false, Introspection: true, MaxDepth: d.MaxDepth, MaxComplexity: d.MaxComplexity,
		MaxTokens: d.MaxTokens, MaxBatch: d.MaxBatch}, nil, slog.New(slog.DiscardHandler))
	e := echo.New()
	s.Routes(e.Group("/graphql"), noThrottle)
	return e
}

func postQuery(e *echo.Echo, query string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestHostileQueriesAreRefused: each hostile document fits the body limit and gets a GraphQL error
// with 400, never a 500 or an answer with data.
func TestHostileQueriesAreRefused(t *testing.T) {
	e := hostileSurface()
	for name, q := range hostileQueries() {
		t.Run(name, func(t *testing.T) {
			if len(q) > maxBody-100 {
				t.Fatalf("the document is %d bytes, over the body limit", len(q))
			}
			rec := postQuery(e, q)
			var res struct {
				Data   json.RawMessage `json:"data"`
				Errors []struct {
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if rec.Code != http.StatusBadRequest || len(res.Errors) == 0 || string(res.Data) != "null" {
				t.Errorf("status %d, %d errors, data %s: want 400 with errors and no data", rec.Code, len(res.Errors), res.Data)
			}
		})
	}
}

// BenchmarkHostileQuery measures what refusing each hostile document costs the server.
func BenchmarkHostileQuery(b *testing.B) {
	e := hostileSurface()
	for name, q := range hostileQueries() {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(q)))
			for b.Loop() {
				if rec := postQuery(e, q); rec.Code >= http.StatusInternalServerError {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
