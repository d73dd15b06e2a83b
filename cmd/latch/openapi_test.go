package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

// oasChecker sends requests to a harness and checks every answer against the OpenAPI document: the
// status must be documented for the operation, and headers and body must match it. A request the
// server accepted (2xx) must match the document too, so the documented request shapes are real.
type oasChecker struct {
	t      *testing.T
	h      *harness
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD /path status"
}

func newOASChecker(t *testing.T, h *harness) *oasChecker {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The document's only server is "/", so the router matches any host, the test server's included.
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &oasChecker{t: t, h: h, doc: doc, router: router, seen: map[string]bool{}}
}

// oasBody is a request body with its content type.
type oasBody struct {
	contentType string
	data        []byte
}

func oasJSON(s string) *oasBody { return &oasBody{"application/json", []byte(s)} }

func oasForm(v url.Values) *oasBody {
	return &oasBody{"application/x-www-form-urlencoded", []byte(v.Encode())}
}

func oasMultipart(t *testing.T, fields map[string]string) *oasBody {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &oasBody{w.FormDataContentType(), buf.Bytes()}
}

// oasBearerAuthenticated stands in for the server's authentication when checking a request: the
// document's bearer scheme is satisfied by an Authorization header of either accepted scheme.
func oasBearerAuthenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if strings.HasPrefix(h, "Bearer ") || strings.HasPrefix(h, "JWT ") {
		return nil
	}
	return in.NewError(errors.New("no bearer token"))
}

func (c *oasChecker) newRequest(method, path string, body *oasBody, headers []string) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body.data)
	}
	req, err := http.NewRequest(method, c.h.srv.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", body.contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// call sends the request, fails the test unless the answer has status want, and checks both against
// the document.
func (c *oasChecker) call(want int, method, path string, body *oasBody, headers ...string) response {
	c.t.Helper()
	r := c.exchange(method, path, body, headers...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status = %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// exchange sends the request and checks request and answer against the document.
func (c *oasChecker) exchange(method, path string, body *oasBody, headers ...string) response {
	c.t.Helper()
	res, err := c.h.srv.Client().Do(c.newRequest(method, path, body, headers))
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	r := response{Status: res.StatusCode, Header: res.Header, Body: data}

	// A fresh request for validation: the sent one's body is spent.
	vreq := c.newRequest(method, path, body, headers)
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s %s: not in the OpenAPI document: %v", method, path, err)
	}
	c.seen[fmt.Sprintf("%s %s %d", route.Method, route.Path, r.Status)] = true
	reqIn := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: oasBearerAuthenticated, SkipSettingDefaults: true}}
	resIn := &openapi3filter.ResponseValidationInput{RequestValidationInput: reqIn, Status: r.Status, Header: r.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	resIn.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), resIn); err != nil {
		c.t.Errorf("%s %s -> %d does not match the document: %v\nheaders %v\nbody %s", method, path, r.Status, err, r.Header, r.Body)
	}
	if r.Status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			c.t.Errorf("%s %s was accepted (%d) but does not match the document: %v", method, path, r.Status, err)
		}
	}
	return r
}

// problem calls and checks the problem's code as well.
func (c *oasChecker) problem(want int, code, method, path string, body *oasBody, headers ...string) problemBody {
	c.t.Helper()
	p := c.call(want, method, path, body, headers...).Problem(c.t)
	if p.Code != code {
		c.t.Fatalf("%s %s: code = %q, want %q (%s)", method, path, p.Code, code, p.Detail)
	}
	return p
}

func (c *oasChecker) post(want int, path string, body *oasBody, headers ...string) response {
	c.t.Helper()
	return c.call(want, http.MethodPost, path, body, headers...)
}

func (c *oasChecker) pair(r response) tokenPair {
	c.t.Helper()
	var p tokenPair
	r.JSON(c.t, &p)
	return p
}

func (c *oasChecker) login(email, password string) tokenPair {
	c.t.Helper()
	c.h.clock.Advance(c.h.cfg.Codes.ResendCooldown + time.Second)
	c.post(http.StatusOK, "/v2/auth/login", oasJSON(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
	code := c.h.codeFor(email)
	return c.pair(c.post(http.StatusOK, "/v2/auth/validate-login", oasJSON(fmt.Sprintf(`{"email":%q,"emailToken":%q}`, email, code))))
}

// requireEverySuccess fails unless each documented operation answered with one of its 2xx statuses,
// so the session above exercised the whole document.
func (c *oasChecker) requireEverySuccess() {
	c.t.Helper()
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ok := false
			for status := range op.Responses.Map() {
				if strings.HasPrefix(status, "2") && c.seen[method+" "+path+" "+status] {
					ok = true
				}
			}
			if !ok {
				c.t.Errorf("%s %s never answered with success", method, path)
			}
		}
	}
}

func oasWrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestOpenAPIDescribesEveryResponse(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, func(c *config.Config) { c.Sandbox.Enabled = true })
		c := newOASChecker(t, h)
		ctx := context.Background()

		c.call(http.StatusOK, http.MethodGet, "/healthz", nil)
		c.call(http.StatusOK, http.MethodGet, "/readyz", nil)
		c.call(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", nil)
		served := c.call(http.StatusOK, http.MethodGet, "/v2/openapi.json", nil)
		file, err := os.ReadFile("../../internal/httpapi/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served.Body, file) {
			t.Error("GET /v2/openapi.json differs from internal/httpapi/openapi.json")
		}

		// Sign-up: a wrong code, then the right one as a form.
		const alice, pw = "alice@example.test", "correct horse battery"
		c.post(http.StatusCreated, "/v2/auth/register", oasJSON(`{"email":"Alice@Example.test","password":"correct horse battery"}`))
		c.problem(http.StatusTooManyRequests, "code_recently_sent", http.MethodPost, "/v2/auth/register",
			oasJSON(`{"email":"alice@example.test","password":"correct horse battery"}`))
		code := h.codeFor(alice)
		p := c.problem(http.StatusUnauthorized, "invalid_code", http.MethodPost, "/v2/auth/validate-register",
			oasJSON(`{"email":"alice@example.test","emailToken":"`+oasWrongCode(code)+`"}`))
		if p.AttemptsRemaining == nil {
			t.Error("invalid_code without attemptsRemaining")
		}
		first := c.pair(c.post(http.StatusOK, "/v2/auth/validate-register", oasForm(url.Values{"email": {alice}, "emailToken": {code}})))

		// Login with the code exchanged in cookie mode, sent as multipart.
		h.clock.Advance(h.cfg.Codes.ResendCooldown + time.Second)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/login",
			oasJSON(`{"email":"alice@example.test","password":"wrong password"}`))
		c.post(http.StatusOK, "/v2/auth/login", oasJSON(`{"email":"alice@example.test","password":"correct horse battery"}`))
		r := c.post(http.StatusOK, "/v2/auth/validate-login", oasMultipart(t, map[string]string{"email": alice, "emailToken": h.codeFor(alice), "mode": "cookie"}))
		if c.pair(r).RefreshToken != "" {
			t.Error("mode cookie returned the refresh token in the body")
		}
		r = c.call(http.StatusOK, http.MethodPost, "/v2/auth/refresh", nil, "Cookie", "latch_refresh="+oasCookie(t, r, "latch_refresh"))
		cookieTab := c.pair(r)
		oasCookie(t, r, "latch_refresh") // rotated in the cookie too

		// The account and its sessions.
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, bearer(first.AccessToken)...)
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, "Authorization", "JWT "+first.AccessToken)
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodGet, "/v2/auth/me", nil)
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodGet, "/v2/auth/me", nil, bearer("not.a.jwt")...)
		type session struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		}
		var sessions []session
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/sessions", nil, bearer(first.AccessToken)...).JSON(t, &sessions)
		if len(sessions) != 2 {
			t.Fatalf("sessions = %+v, want 2", sessions)
		}
		c.post(http.StatusOK, "/v2/auth/verify", oasJSON(`{"token":"`+first.AccessToken+`"}`))
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodPost, "/v2/auth/verify", oasJSON(`{"token":"x.y.z"}`))
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/verify", &oasBody{"application/json", nil})

		// Rotation, then reuse of the spent token after the grace window.
		next := c.pair(c.post(http.StatusOK, "/v2/auth/refresh", oasJSON(`{"refreshToken":"`+first.RefreshToken+`"}`)))
		h.clock.Advance(h.cfg.Tokens.RefreshReuseGrace + time.Second)
		c.problem(http.StatusUnauthorized, "refresh_token_reused", http.MethodPost, "/v2/auth/refresh",
			oasJSON(`{"refreshToken":"`+first.RefreshToken+`"}`))
		c.problem(http.StatusUnauthorized, "session_revoked", http.MethodGet, "/v2/auth/sessions", nil, bearer(next.AccessToken)...)

		// Ending sessions: an unknown id, the cookie session by id, then by refresh token.
		c.problem(http.StatusNotFound, "not_found", http.MethodDelete, "/v2/auth/sessions/no-such-session", nil, bearer(cookieTab.AccessToken)...)
		pair := c.login(alice, pw)
		var mine []session
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/sessions", nil, bearer(pair.AccessToken)...).JSON(t, &mine)
		for _, s := range mine {
			if !s.Current {
				c.call(http.StatusNoContent, http.MethodDelete, "/v2/auth/sessions/"+s.ID, nil, bearer(pair.AccessToken)...)
			}
		}
		c.problem(http.StatusUnauthorized, "invalid_refresh_token", http.MethodPost, "/v2/auth/logout", oasJSON(`{"refreshToken":"lrt_nope"}`))
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/logout", oasJSON(`{}`))
		c.post(http.StatusNoContent, "/v2/auth/logout", oasJSON(`{"refreshToken":"`+pair.RefreshToken+`"}`))

		// Password reset and change.
		c.post(http.StatusAccepted, "/v2/auth/password/forgot", oasJSON(`{"email":"alice@example.test"}`))
		c.post(http.StatusAccepted, "/v2/auth/password/forgot", oasJSON(`{"email":"nobody@example.test"}`))
		c.post(http.StatusOK, "/v2/auth/password/reset", oasJSON(`{"email":"alice@example.test","emailToken":"`+h.codeFor(alice)+`","newPassword":"a new long password"}`))
		h.mailTo(alice) // the "password changed" notice
		pair = c.login(alice, "a new long password")
		c.problem(http.StatusBadRequest, "password_unchanged", http.MethodPost, "/v2/auth/password/change",
			oasJSON(`{"currentPassword":"a new long password","newPassword":"a new long password"}`), bearer(pair.AccessToken)...)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/password/change",
			oasJSON(`{"currentPassword":"not it at all","newPassword":"another password"}`), bearer(pair.AccessToken)...)
		c.post(http.StatusOK, "/v2/auth/password/change", oasForm(url.Values{"currentPassword": {"a new long password"}, "newPassword": {pw}}), bearer(pair.AccessToken)...)
		h.mailTo(alice)
		c.post(http.StatusNoContent, "/v2/auth/logout", oasForm(url.Values{"all": {"true"}}), bearer(pair.AccessToken)...)

		// Bodies the server cannot read.
		c.problem(http.StatusBadRequest, "malformed_request", http.MethodPost, "/v2/auth/login", oasJSON(`{"email":`))
		c.problem(http.StatusBadRequest, "malformed_request", http.MethodPost, "/v2/auth/login", oasJSON(`[]`))
		p = c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/login", oasJSON(`{"email":5}`))
		if len(p.Errors) == 0 {
			t.Error("validation_failed without errors")
		}
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/register", oasJSON(`{"email":"not-an-address","password":"x"}`))
		c.problem(http.StatusUnsupportedMediaType, "unsupported_media_type", http.MethodPost, "/v2/auth/login", &oasBody{"text/plain", []byte("alice")})
		c.problem(http.StatusRequestEntityTooLarge, "payload_too_large", http.MethodPost, "/v2/auth/register",
			oasJSON(`{"email":"`+strings.Repeat("a", 70<<10)+`"}`))

		// Password guessing is throttled per account and address.
		throttled := false
		for i := 0; i < 10 && !throttled; i++ {
			res := c.exchange(http.MethodPost, "/v2/auth/login", oasJSON(`{"email":"mallory@example.test","password":"guess"}`))
			throttled = res.Status == http.StatusTooManyRequests && res.Problem(t).Code == "login_throttled"
		}
		if !throttled {
			t.Error("ten wrong passwords were never throttled")
		}

		// A disabled account.
		const carol = "carol@example.test"
		c.post(http.StatusCreated, "/v2/auth/register", oasJSON(`{"email":"carol@example.test","password":"carol's password"}`))
		carolPair := c.pair(c.post(http.StatusOK, "/v2/auth/validate-register", oasJSON(`{"email":"carol@example.test","emailToken":"`+h.codeFor(carol)+`"}`)))
		var me struct {
			ID string `json:"id"`
		}
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, bearer(carolPair.AccessToken)...).JSON(t, &me)
		if err := h.app.Store.SetUserStatus(ctx, me.ID, auth.StatusDisabled, auth.Event{UserID: me.ID, Kind: "disabled"}); err != nil {
			t.Fatal(err)
		}
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodGet, "/v2/auth/me", nil, bearer(carolPair.AccessToken)...)
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodPost, "/v2/auth/refresh", oasJSON(`{"refreshToken":"`+carolPair.RefreshToken+`"}`))
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodPost, "/v2/auth/login", oasJSON(`{"email":"carol@example.test","password":"carol's password"}`))

		// Expiry.
		pair = c.login(alice, pw)
		h.clock.Advance(h.cfg.Tokens.AccessTTL + token.ClockLeeway + time.Second)
		c.problem(http.StatusUnauthorized, "token_expired", http.MethodGet, "/v2/auth/me", nil, bearer(pair.AccessToken)...)
		h.clock.Advance(h.cfg.Tokens.RefreshIdleTTL)
		c.problem(http.StatusUnauthorized, "session_expired", http.MethodPost, "/v2/auth/refresh", oasJSON(`{"refreshToken":"`+pair.RefreshToken+`"}`))

		// The sandbox inbox, and the metrics of everything above.
		var inbox []any
		c.call(http.StatusOK, http.MethodGet, "/v2/sandbox/emails?to="+url.QueryEscape(alice), nil).JSON(t, &inbox)
		if len(inbox) == 0 {
			t.Error("the sandbox inbox of alice is empty")
		}
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodGet, "/v2/sandbox/emails", nil)
		c.call(http.StatusOK, http.MethodGet, "/metrics", nil)

		// Last, as it breaks the instance: readiness without a database.
		if err := h.app.Store.Close(); err != nil {
			t.Fatal(err)
		}
		c.problem(http.StatusServiceUnavailable, "not_ready", http.MethodGet, "/readyz", nil)

		c.requireEverySuccess()
	})
}

// TestOpenAPIRateLimitedResponse checks the per-IP bucket's 429, which needs the bucket on.
func TestOpenAPIRateLimitedResponse(t *testing.T) {
	h := newHarness(t, store.SQLite, func(c *config.Config) { c.RateLimit.IPPerMinute, c.RateLimit.IPBurst = 1, 1 })
	c := newOASChecker(t, h)
	c.post(http.StatusAccepted, "/v2/auth/password/forgot", oasJSON(`{"email":"nobody@example.test"}`))
	c.problem(http.StatusTooManyRequests, "rate_limited", http.MethodPost, "/v2/auth/password/forgot", oasJSON(`{"email":"nobody@example.test"}`))
}

func oasCookie(t *testing.T, r response, name string) string {
	t.Helper()
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == name && ck.Value != "" {
			return ck.Value
		}
	}
	t.Fatalf("no %s cookie in %v", name, r.Header)
	return ""
}
