package apptest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem decodes a problem+json body, failing the test unless the content type says it is one.
func (r Response) Problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p Problem
	r.JSON(t, &p)
	return p
}

// TokenPair decodes a token pair answer.
func (r Response) TokenPair(t testing.TB) TokenPair {
	t.Helper()
	var p TokenPair
	r.JSON(t, &p)
	return p
}

// Problem is an RFC 9457 error answer with Latch's members.
type Problem struct {
	Title             string       `json:"title"`
	Status            int          `json:"status"`
	Code              string       `json:"code"`
	Detail            string       `json:"detail"`
	Errors            []FieldError `json:"errors"`
	AttemptsRemaining *int         `json:"attemptsRemaining"`
}

// FieldError is one entry of a validation problem's errors.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Fields lists the fields a validation problem names, in its order.
func (p Problem) Fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// TokenPair is what register, login and refresh answer.
type TokenPair struct {
	AccessToken      string `json:"accessToken"`
	RefreshToken     string `json:"refreshToken"`
	TokenType        string `json:"tokenType"`
	ExpiresIn        int64  `json:"expiresIn"`
	RefreshExpiresIn int64  `json:"refreshExpiresIn"`
}

// WantStatus fails the test unless r has the status.
func WantStatus(t testing.TB, r Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// WantProblem fails the test unless r is a problem+json answer with the status (in the header and the
// body), a title and the catalogue code; a 429 must also say when to retry. It returns the problem for
// further checks.
func WantProblem(t testing.TB, r Response, status int, code string) Problem {
	t.Helper()
	WantStatus(t, r, status)
	p := r.Problem(t)
	if p.Code != code || p.Status != status || p.Title == "" {
		t.Fatalf("problem = %+v, want status %d code %s; body %s", p, status, code, r.Body)
	}
	if status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	return p
}

// WithoutRequestID decodes a JSON object body without its requestId, the one member that differs
// between two otherwise identical answers.
func WithoutRequestID(t testing.TB, r Response) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	delete(m, "requestId")
	return m
}

// DecodeJWT decodes a JWT's header and claims without verifying it: what a client sees.
func DecodeJWT(t testing.TB, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want 3: %q", len(parts), jwt)
	}
	decode := func(seg string) map[string]any {
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatalf("JWT segment is not base64url: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("JWT segment is not a JSON object: %v", err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

// Claim returns a string claim of a JWT, failing the test when it has none.
func Claim(t testing.TB, jwt, name string) string {
	t.Helper()
	_, c := DecodeJWT(t, jwt)
	s, _ := c[name].(string)
	if s == "" {
		t.Fatalf("access token has no string claim %q: %v", name, c)
	}
	return s
}

// Cookie finds the named cookie among an answer's Set-Cookie headers, failing the test without one.
func Cookie(t testing.TB, r Response, name string) *http.Cookie {
	t.Helper()
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("bad Set-Cookie %q: %v", line, err)
		}
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, r.Header.Values("Set-Cookie"))
	return nil
}
