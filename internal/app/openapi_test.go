package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

// docChecker sends requests to an instance and checks every answer against the OpenAPI document: the
// status must be documented for the operation, and headers and body must match it. A request the
// server accepted (2xx) must match the document too, so the documented request shapes are real.
type docChecker struct {
	t      *testing.T
	h      *apptest.Instance
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD /path status"
}

func newDocChecker(t *testing.T, h *apptest.Instance) *docChecker {
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
	return &docChecker{t: t, h: h, doc: doc, router: router, seen: map[string]bool{}}
}

// docBody is a request body with its content type, kept as bytes: each request is built twice, once
// to send and once to validate.
type docBody struct {
	contentType string
	data        []byte
}

func jsonBody(s string) *docBody { return &docBody{"application/json", []byte(s)} }

func formBody(fields map[string]string) *docBody {
	return &docBody{"application/x-www-form-urlencoded", []byte(apptest.Form(fields))}
}

func multipartBody(t *testing.T, fields map[string]string) *docBody {
	t.Helper()
	ct, data := apptest.Multipart(t, fields)
	return &docBody{ct, data}
}

// raw is a fresh body to send: nil for none.
func (b *docBody) raw() any {
	if b == nil {
		return nil
	}
	return apptest.Raw{ContentType: b.contentType, Body: bytes.NewReader(b.data)}
}

// bearerAuthenticated stands in for the server's authentication when checking a request: the
// document's bearer scheme is satisfied by an Authorization header of either accepted scheme.
func bearerAuthenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if strings.HasPrefix(h, "Bearer ") || strings.HasPrefix(h, "JWT ") {
		return nil
	}
	return in.NewError(errors.New("no bearer token"))
}

// call sends the request, fails the test unless the answer has status want, and checks both against
// the document.
func (c *docChecker) call(want int, method, path string, body *docBody, headers ...string) apptest.Response {
	c.t.Helper()
	r := c.exchange(method, path, body, headers...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status = %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// exchange sends the request and checks request and answer against the document.
func (c *docChecker) exchange(method, path string, body *docBody, headers ...string) apptest.Response {
	c.t.Helper()
	r := c.h.Do(c.t, method, path, body.raw(), headers...)

	// A fresh request for validation: the sent one's body is spent.
	vreq, err := c.h.NewRequest(method, path, body.raw(), headers...)
	if err != nil {
		c.t.Fatal(err)
	}
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s %s: not in the OpenAPI document: %v", method, path, err)
	}
	c.seen[fmt.Sprintf("%s %s %d", route.Method, route.Path, r.Status)] = true
	reqIn := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerAuthenticated, SkipSettingDefaults: true}}
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
func (c *docChecker) problem(want int, code, method, path string, body *docBody, headers ...string) apptest.Problem {
	c.t.Helper()
	return apptest.WantProblem(c.t, c.call(want, method, path, body, headers...), want, code)
}

func (c *docChecker) post(want int, path string, body *docBody, headers ...string) apptest.Response {
	c.t.Helper()
	return c.call(want, http.MethodPost, path, body, headers...)
}

func (c *docChecker) pair(r apptest.Response) apptest.TokenPair {
	c.t.Helper()
	return r.TokenPair(c.t)
}

func (c *docChecker) login(email, password string) apptest.TokenPair {
	c.t.Helper()
	c.h.Clock.Advance(c.h.Config.Codes.ResendCooldown + time.Second)
	c.post(http.StatusOK, "/v2/auth/login", jsonBody(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
	code := c.h.CodeFor(c.t, email)
	return c.pair(c.post(http.StatusOK, "/v2/auth/validate-login", jsonBody(fmt.Sprintf(`{"email":%q,"emailToken":%q}`, email, code))))
}

// requireEverySuccess fails unless each documented operation of the paths covered answered with one
// of its 2xx statuses, so the session above exercised that part of the document.
func (c *docChecker) requireEverySuccess(covered func(path string) bool) {
	c.t.Helper()
	for path, item := range c.doc.Paths.Map() {
		if !covered(path) {
			continue
		}
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

// refreshCookie is the refresh token an answer set in its cookie.
func refreshCookie(t *testing.T, r apptest.Response) string {
	t.Helper()
	c := apptest.Cookie(t, r, "latch_refresh")
	if c.Value == "" {
		t.Fatalf("the latch_refresh cookie is empty in %v", r.Header)
	}
	return c.Value
}

func TestOpenAPIDescribesEveryResponse(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d, func(c *config.Config) { c.Sandbox.Enabled = true })
		c := newDocChecker(t, h)
		ctx := context.Background()

		c.call(http.StatusOK, http.MethodGet, "/healthz", nil)
		c.call(http.StatusOK, http.MethodGet, "/readyz", nil)
		c.call(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", nil)
		served := c.call(http.StatusOK, http.MethodGet, "/v2/openapi.json", nil)
		file, err := os.ReadFile("../httpapi/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served.Body, file) {
			t.Error("GET /v2/openapi.json differs from internal/httpapi/openapi.json")
		}

		// Sign-up: a wrong code, then the right one as a form.
		const alice, pw = "alice@example.test", "correct horse battery"
		c.post(http.StatusCreated, "/v2/auth/register", jsonBody(`{"email":"Alice@Example.test","password":"correct horse battery"}`))
		c.problem(http.StatusTooManyRequests, "code_recently_sent", http.MethodPost, "/v2/auth/register",
			jsonBody(`{"email":"alice@example.test","password":"correct horse battery"}`))
		code := h.CodeFor(t, alice)
		p := c.problem(http.StatusUnauthorized, "invalid_code", http.MethodPost, "/v2/auth/validate-register",
			jsonBody(`{"email":"alice@example.test","emailToken":"`+apptest.OtherCode(code)+`"}`))
		if p.AttemptsRemaining != nil {
			t.Error("a wrong signup code tells its tries remaining")
		}
		first := c.pair(c.post(http.StatusOK, "/v2/auth/validate-register", formBody(apptest.EmailCode(alice, code))))

		// Login with the code exchanged in cookie mode, sent as multipart.
		h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/login",
			jsonBody(`{"email":"alice@example.test","password":"wrong password"}`))
		c.post(http.StatusOK, "/v2/auth/login", jsonBody(`{"email":"alice@example.test","password":"correct horse battery"}`))
		loginCode := h.CodeFor(t, alice)
		p = c.problem(http.StatusUnauthorized, "invalid_code", http.MethodPost, "/v2/auth/validate-login",
			jsonBody(`{"email":"alice@example.test","emailToken":"`+apptest.OtherCode(loginCode)+`"}`))
		if p.AttemptsRemaining == nil {
			t.Error("a wrong login code without attemptsRemaining")
		}
		r := c.post(http.StatusOK, "/v2/auth/validate-login", multipartBody(t, map[string]string{"email": alice, "emailToken": loginCode, "mode": "cookie"}))
		if c.pair(r).RefreshToken != "" {
			t.Error("mode cookie returned the refresh token in the body")
		}
		r = c.call(http.StatusOK, http.MethodPost, "/v2/auth/refresh", nil, "Cookie", "latch_refresh="+refreshCookie(t, r))
		cookieTab := c.pair(r)
		refreshCookie(t, r) // rotated in the cookie too

		// The account and its sessions.
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(first.AccessToken)...)
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, "Authorization", "JWT "+first.AccessToken)
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodGet, "/v2/auth/me", nil)
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodGet, "/v2/auth/me", nil, apptest.Bearer("not.a.jwt")...)
		type session struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		}
		var sessions []session
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/sessions", nil, apptest.Bearer(first.AccessToken)...).JSON(t, &sessions)
		if len(sessions) != 2 {
			t.Fatalf("sessions = %+v, want 2", sessions)
		}
		c.post(http.StatusOK, "/v2/auth/verify", jsonBody(`{"token":"`+first.AccessToken+`"}`))
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodPost, "/v2/auth/verify", jsonBody(`{"token":"x.y.z"}`))
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/verify", &docBody{"application/json", nil})

		// Rotation, then reuse of the spent token after the grace window.
		next := c.pair(c.post(http.StatusOK, "/v2/auth/refresh", jsonBody(`{"refreshToken":"`+first.RefreshToken+`"}`)))
		h.Clock.Advance(h.Config.Tokens.RefreshReuseGrace + time.Second)
		c.problem(http.StatusUnauthorized, "refresh_token_reused", http.MethodPost, "/v2/auth/refresh",
			jsonBody(`{"refreshToken":"`+first.RefreshToken+`"}`))
		c.problem(http.StatusUnauthorized, "session_revoked", http.MethodGet, "/v2/auth/sessions", nil, apptest.Bearer(next.AccessToken)...)

		// Ending sessions: an unknown id, the cookie session by id, then by refresh token.
		c.problem(http.StatusNotFound, "not_found", http.MethodDelete, "/v2/auth/sessions/no-such-session", nil, apptest.Bearer(cookieTab.AccessToken)...)
		pair := c.login(alice, pw)
		var mine []session
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/sessions", nil, apptest.Bearer(pair.AccessToken)...).JSON(t, &mine)
		for _, s := range mine {
			if !s.Current {
				c.call(http.StatusNoContent, http.MethodDelete, "/v2/auth/sessions/"+s.ID, nil, apptest.Bearer(pair.AccessToken)...)
			}
		}
		c.problem(http.StatusUnauthorized, "invalid_refresh_token", http.MethodPost, "/v2/auth/logout", jsonBody(`{"refreshToken":"lrt_nope"}`))
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/logout", jsonBody(`{}`))
		c.post(http.StatusNoContent, "/v2/auth/logout", jsonBody(`{"refreshToken":"`+pair.RefreshToken+`"}`))

		// Password reset and change.
		c.post(http.StatusAccepted, "/v2/auth/password/forgot", jsonBody(`{"email":"alice@example.test"}`))
		c.post(http.StatusAccepted, "/v2/auth/password/forgot", jsonBody(`{"email":"nobody@example.test"}`))
		c.post(http.StatusOK, "/v2/auth/password/reset", jsonBody(`{"email":"alice@example.test","emailToken":"`+h.CodeFor(t, alice)+`","newPassword":"a new long password"}`))
		h.MailTo(t, alice) // the "password changed" notice
		pair = c.login(alice, "a new long password")
		c.problem(http.StatusBadRequest, "password_unchanged", http.MethodPost, "/v2/auth/password/change",
			jsonBody(`{"currentPassword":"a new long password","newPassword":"a new long password"}`), apptest.Bearer(pair.AccessToken)...)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/password/change",
			jsonBody(`{"currentPassword":"not it at all","newPassword":"another password"}`), apptest.Bearer(pair.AccessToken)...)
		c.post(http.StatusOK, "/v2/auth/password/change", formBody(map[string]string{"currentPassword": "a new long password", "newPassword": pw}), apptest.Bearer(pair.AccessToken)...)
		h.MailTo(t, alice)
		c.post(http.StatusNoContent, "/v2/auth/logout", formBody(map[string]string{"all": "true"}), apptest.Bearer(pair.AccessToken)...)

		// Two-factor authentication: enrolment, a login in one call, the second step refused, disabling.
		const dave = "dave@example.test"
		davePair := h.Signup(t, dave, pw)
		daveAuth := apptest.Bearer(davePair.AccessToken)
		c.problem(http.StatusConflict, "totp_setup_required", http.MethodPost, "/v2/auth/totp/enable", jsonBody(`{"otp":"123456"}`), daveAuth...)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/totp/setup", jsonBody(`{"password":"not it at all"}`), daveAuth...)
		var setup apptest.TOTPSetup
		c.post(http.StatusOK, "/v2/auth/totp/setup", jsonBody(`{"password":"correct horse battery"}`), daveAuth...).JSON(t, &setup)
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/totp/enable", jsonBody(`{"otp":"12345"}`), daveAuth...)
		c.post(http.StatusOK, "/v2/auth/totp/enable", formBody(map[string]string{"otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}), daveAuth...)
		c.problem(http.StatusConflict, "totp_already_enabled", http.MethodPost, "/v2/auth/totp/setup", jsonBody(`{"password":"correct horse battery"}`), daveAuth...)
		h.Clock.Advance(30 * time.Second)
		c.problem(http.StatusUnauthorized, "otp_required", http.MethodPost, "/v2/auth/login", jsonBody(`{"email":"dave@example.test","password":"correct horse battery"}`))
		totpCode := apptest.TOTPCode(t, setup.Secret, h.Clock.Now())
		loginWith := jsonBody(`{"email":"dave@example.test","password":"correct horse battery","otp":"` + totpCode + `"}`)
		daveTOTP := c.pair(c.post(http.StatusOK, "/v2/auth/login", loginWith))
		c.problem(http.StatusUnauthorized, "invalid_otp", http.MethodPost, "/v2/auth/login", loginWith)
		var daveMe struct {
			TOTPEnabled bool `json:"totpEnabled"`
		}
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(daveTOTP.AccessToken)...).JSON(t, &daveMe)
		if !daveMe.TOTPEnabled {
			t.Error("me does not say that TOTP is on")
		}
		h.Clock.Advance(30 * time.Second)
		c.problem(http.StatusUnauthorized, "invalid_otp", http.MethodPost, "/v2/auth/totp/disable", jsonBody(`{"password":"correct horse battery","otp":"`+totpCode+`"}`), daveAuth...)
		c.post(http.StatusOK, "/v2/auth/totp/disable", multipartBody(t, map[string]string{"password": pw, "otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}), daveAuth...)
		c.problem(http.StatusConflict, "totp_not_enabled", http.MethodPost, "/v2/auth/totp/disable", jsonBody(`{"password":"correct horse battery","otp":"123456"}`), daveAuth...)

		// The caller's own account: email change (a wrong password, a wrong code, then the change), the
		// export, and deletion with a wrong code, then the right one.
		const erin = "erin@example.test"
		erinAuth := apptest.Bearer(h.Signup(t, erin, pw).AccessToken)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/email/change",
			jsonBody(`{"currentPassword":"not it at all","newEmail":"erin2@example.test"}`), erinAuth...)
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/email/change",
			jsonBody(`{"currentPassword":"correct horse battery","newEmail":"erin@"}`), erinAuth...)
		c.post(http.StatusOK, "/v2/auth/email/change", formBody(map[string]string{"currentPassword": pw, "newEmail": "erin2@example.test"}), erinAuth...)
		c.problem(http.StatusTooManyRequests, "code_recently_sent", http.MethodPost, "/v2/auth/email/change",
			jsonBody(`{"currentPassword":"correct horse battery","newEmail":"erin3@example.test"}`), erinAuth...)
		changeCode := h.CodeFor(t, "erin2@example.test")
		c.problem(http.StatusUnauthorized, "invalid_code", http.MethodPost, "/v2/auth/email/confirm",
			jsonBody(`{"emailToken":"`+apptest.OtherCode(changeCode)+`"}`), erinAuth...)
		c.post(http.StatusOK, "/v2/auth/email/confirm", jsonBody(`{"emailToken":"`+changeCode+`"}`), erinAuth...)
		h.MailTo(t, erin) // the notice to the old address
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me/export", nil, erinAuth...)
		c.problem(http.StatusUnauthorized, "invalid_token", http.MethodGet, "/v2/auth/me/export", nil)
		c.problem(http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v2/auth/me/deletion", jsonBody(`{"password":"not it at all"}`), erinAuth...)
		c.post(http.StatusOK, "/v2/auth/me/deletion", jsonBody(`{"password":"correct horse battery"}`), erinAuth...)
		deleteCode := h.CodeFor(t, "erin2@example.test")
		c.problem(http.StatusUnauthorized, "invalid_code", http.MethodDelete, "/v2/auth/me", jsonBody(`{"emailToken":"`+apptest.OtherCode(deleteCode)+`"}`), erinAuth...)
		c.call(http.StatusNoContent, http.MethodDelete, "/v2/auth/me", jsonBody(`{"emailToken":"`+deleteCode+`"}`), erinAuth...)
		c.problem(http.StatusUnauthorized, "session_revoked", http.MethodGet, "/v2/auth/me/export", nil, erinAuth...)

		// Bodies the server cannot read.
		c.problem(http.StatusBadRequest, "malformed_request", http.MethodPost, "/v2/auth/login", jsonBody(`{"email":`))
		c.problem(http.StatusBadRequest, "malformed_request", http.MethodPost, "/v2/auth/login", jsonBody(`[]`))
		p = c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/login", jsonBody(`{"email":5}`))
		if len(p.Errors) == 0 {
			t.Error("validation_failed without errors")
		}
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/v2/auth/register", jsonBody(`{"email":"not-an-address","password":"x"}`))
		c.problem(http.StatusUnsupportedMediaType, "unsupported_media_type", http.MethodPost, "/v2/auth/login", &docBody{"text/plain", []byte("alice")})
		c.problem(http.StatusRequestEntityTooLarge, "payload_too_large", http.MethodPost, "/v2/auth/register",
			jsonBody(`{"email":"`+strings.Repeat("a", 70<<10)+`"}`))

		// Password guessing is throttled per account and address.
		throttled := false
		for i := 0; i < 10 && !throttled; i++ {
			res := c.exchange(http.MethodPost, "/v2/auth/login", jsonBody(`{"email":"mallory@example.test","password":"guess"}`))
			throttled = res.Status == http.StatusTooManyRequests && res.Problem(t).Code == "login_throttled"
		}
		if !throttled {
			t.Error("ten wrong passwords were never throttled")
		}

		// A disabled account.
		const carol = "carol@example.test"
		c.post(http.StatusCreated, "/v2/auth/register", jsonBody(`{"email":"carol@example.test","password":"carol's password"}`))
		carolPair := c.pair(c.post(http.StatusOK, "/v2/auth/validate-register", jsonBody(`{"email":"carol@example.test","emailToken":"`+h.CodeFor(t, carol)+`"}`)))
		var me struct {
			ID string `json:"id"`
		}
		c.call(http.StatusOK, http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(carolPair.AccessToken)...).JSON(t, &me)
		if err := h.App.Store.SetUserStatus(ctx, me.ID, auth.StatusDisabled, auth.Event{UserID: me.ID, Kind: "disabled"}); err != nil {
			t.Fatal(err)
		}
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(carolPair.AccessToken)...)
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodPost, "/v2/auth/refresh", jsonBody(`{"refreshToken":"`+carolPair.RefreshToken+`"}`))
		c.problem(http.StatusUnauthorized, "account_disabled", http.MethodPost, "/v2/auth/login", jsonBody(`{"email":"carol@example.test","password":"carol's password"}`))

		// Expiry.
		pair = c.login(alice, pw)
		h.Clock.Advance(h.Config.Tokens.AccessTTL + token.ClockLeeway + time.Second)
		c.problem(http.StatusUnauthorized, "token_expired", http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(pair.AccessToken)...)
		h.Clock.Advance(h.Config.Tokens.RefreshIdleTTL)
		c.problem(http.StatusUnauthorized, "session_expired", http.MethodPost, "/v2/auth/refresh", jsonBody(`{"refreshToken":"`+pair.RefreshToken+`"}`))

		// The sandbox inbox, and the metrics of everything above.
		var inbox []any
		c.call(http.StatusOK, http.MethodGet, "/v2/sandbox/emails?to="+url.QueryEscape(alice), nil).JSON(t, &inbox)
		if len(inbox) == 0 {
			t.Error("the sandbox inbox of alice is empty")
		}
		c.problem(http.StatusBadRequest, "validation_failed", http.MethodGet, "/v2/sandbox/emails", nil)
		c.call(http.StatusOK, http.MethodGet, "/metrics", nil)

		// Last, as it breaks the instance: readiness without a database.
		if err := h.App.Store.Close(); err != nil {
			t.Fatal(err)
		}
		c.problem(http.StatusServiceUnavailable, "not_ready", http.MethodGet, "/readyz", nil)

		c.requireEverySuccess(func(path string) bool { return !isAdminPath(path) }) // TestOpenAPIDescribesTheAdminAPI covers those
	})
}

func isAdminPath(path string) bool { return strings.HasPrefix(path, "/v2/admin/") }

// TestOpenAPIRateLimitedResponse checks the per-IP bucket's 429, which needs the bucket on.
func TestOpenAPIRateLimitedResponse(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.RateLimit.IPPerMinute, c.RateLimit.IPBurst = 1, 1 })
	c := newDocChecker(t, h)
	c.post(http.StatusAccepted, "/v2/auth/password/forgot", jsonBody(`{"email":"nobody@example.test"}`))
	c.problem(http.StatusTooManyRequests, "rate_limited", http.MethodPost, "/v2/auth/password/forgot", jsonBody(`{"email":"nobody@example.test"}`))
}

// TestOpenAPIDescribesTenants checks against the document what a tenant changes: the /t/{tenantId}
// server, a login answering the token pair when the second step is off, and a body tenant refused
// under a path naming another.
func TestOpenAPIDescribesTenants(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	h.CreateTenant(t, "quick", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff)})
	c := newDocChecker(t, h)
	const email = "tenant-doc@example.test"
	h.CreateAccount(t, "quick", email, apptest.Password)

	pair := c.pair(c.post(http.StatusOK, "/t/quick/v2/auth/login", jsonBody(`{"email":"tenant-doc@example.test","password":"correct horse battery"}`)))
	if pair.AccessToken == "" || pair.RefreshToken == "" {
		t.Fatalf("login with the second step off answered %+v", pair)
	}
	r := c.post(http.StatusOK, "/v2/auth/login", formBody(map[string]string{"email": email, "password": apptest.Password, "tenantId": "quick", "mode": "cookie"}))
	if c.pair(r).RefreshToken != "" || refreshCookie(t, r) == "" {
		t.Error("login in cookie mode put the refresh token in the body")
	}
	c.call(http.StatusOK, http.MethodGet, "/t/quick/v2/auth/me", nil, apptest.Bearer(pair.AccessToken)...)
	c.post(http.StatusOK, "/t/quick/v2/auth/verify", jsonBody(`{"token":"`+pair.AccessToken+`"}`))
	c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/t/quick/v2/auth/login",
		jsonBody(`{"email":"tenant-doc@example.test","password":"correct horse battery","tenantId":"default"}`))
	c.problem(http.StatusBadRequest, "validation_failed", http.MethodPost, "/t/nope/v2/auth/register",
		jsonBody(`{"email":"tenant-doc@example.test","password":"correct horse battery"}`))
}
