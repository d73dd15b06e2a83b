package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// bodyRoute is a body-taking route: the fields an empty body must name, and a field whose wrong JSON
// type must be named.
type bodyRoute struct {
	path     string
	required []string
	typed    string
	auth     bool // needs an access token before the body is read
}

var bodyRoutes = []bodyRoute{
	{"/v2/auth/register", []string{"email", "password"}, "email", false},
	{"/v2/auth/validate-register", []string{"email", "emailToken"}, "emailToken", false},
	{"/v2/auth/login", []string{"email", "password"}, "password", false},
	{"/v2/auth/validate-login", []string{"email", "emailToken"}, "email", false},
	{"/v2/auth/refresh", []string{"refreshToken"}, "refreshToken", false},
	{"/v2/auth/logout", []string{"refreshToken"}, "all", false},
	{"/v2/auth/verify", []string{"token"}, "token", false},
	{"/v2/auth/password/forgot", []string{"email"}, "email", false},
	{"/v2/auth/password/reset", []string{"email", "emailToken", "newPassword"}, "newPassword", false},
	{"/v2/auth/password/change", []string{"currentPassword", "newPassword"}, "currentPassword", true},
	{"/v2/auth/totp/setup", []string{"password"}, "password", true},
	{"/v2/auth/totp/enable", []string{"otp"}, "otp", true},
	{"/v2/auth/totp/disable", []string{"password", "otp"}, "otp", true},
	{"/v2/auth/email/change", []string{"currentPassword", "newEmail"}, "newEmail", true},
	{"/v2/auth/email/confirm", []string{"emailToken"}, "emailToken", true},
	{"/v2/auth/me/deletion", []string{"password"}, "password", true},
}

// sendRaw sends a raw body with a content type ("" sends none); no input may make the server fail.
func sendRaw(t *testing.T, h *apptest.Instance, method, path, contentType string, body io.Reader, headers ...string) apptest.Response {
	t.Helper()
	r := h.Do(t, method, path, apptest.Raw{ContentType: contentType, Body: body}, headers...)
	if r.Status >= http.StatusInternalServerError {
		t.Errorf("%s %s answered %d: %s", method, path, r.Status, r.Body)
	}
	return r
}

// unsized hides a body's length, so the request is chunked and only reading it finds its size.
type unsized struct{ io.Reader }

func TestBadInput(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		pair := h.Signup(t, "bad-input@example.test", apptest.Password)
		auth := apptest.Bearer(pair.AccessToken)
		headersFor := func(r bodyRoute) []string {
			if r.auth {
				return auth
			}
			return nil
		}
		const jsonType = "application/json"

		for _, route := range bodyRoutes {
			t.Run(strings.TrimPrefix(route.path, "/v2/auth/"), func(t *testing.T) {
				send := func(contentType string, body io.Reader) apptest.Response {
					t.Helper()
					return sendRaw(t, h, http.MethodPost, route.path, contentType, body, headersFor(route)...)
				}

				for _, body := range []string{`{`, `{"email":}`, `{"email":"a@b.c"} trailing`, `nul`, "\x00\xff", `{"email":"a@b.c",}`} {
					apptest.WantProblem(t, send(jsonType, strings.NewReader(body)), http.StatusBadRequest, "malformed_request")
				}
				for _, body := range []string{`[]`, `[{"email":"a@b.c"}]`, `"text"`, `5`, `true`} {
					apptest.WantProblem(t, send(jsonType, strings.NewReader(body)), http.StatusBadRequest, "malformed_request")
				}

				for _, value := range []string{`5`, `{"a":1}`, `["x"]`} {
					p := apptest.WantProblem(t, send(jsonType, strings.NewReader(`{"`+route.typed+`":`+value+`}`)), http.StatusBadRequest, "validation_failed")
					if diff := cmp.Diff([]string{route.typed}, p.Fields()); diff != "" {
						t.Errorf("%s = %s: fields (-want +got):\n%s", route.typed, value, diff)
					}
				}

				for _, empty := range []struct{ contentType, body string }{{jsonType, `{}`}, {jsonType, ``}, {"", ``}, {jsonType, `null`}} {
					p := apptest.WantProblem(t, send(empty.contentType, strings.NewReader(empty.body)), http.StatusBadRequest, "validation_failed")
					if diff := cmp.Diff(route.required, p.Fields()); diff != "" {
						t.Errorf("body %q: fields (-want +got):\n%s", empty.body, diff)
					}
					for _, e := range p.Errors {
						if e.Message == "" {
							t.Errorf("field %s has no message", e.Field)
						}
					}
				}

				big := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`
				apptest.WantProblem(t, send(jsonType, strings.NewReader(big)), http.StatusRequestEntityTooLarge, "payload_too_large")
				apptest.WantProblem(t, send(jsonType, unsized{strings.NewReader(big)}), http.StatusRequestEntityTooLarge, "payload_too_large")
				form := apptest.Form(map[string]string{"email": strings.Repeat("a", 70<<10)})
				apptest.WantProblem(t, send("application/x-www-form-urlencoded", unsized{strings.NewReader(form)}), http.StatusRequestEntityTooLarge, "payload_too_large")
				ct, mp := apptest.Multipart(t, map[string]string{"email": strings.Repeat("a", 70<<10)})
				apptest.WantProblem(t, send(ct, unsized{bytes.NewReader(mp)}), http.StatusRequestEntityTooLarge, "payload_too_large")

				for _, ct := range []string{"text/plain", "application/xml", "image/png"} {
					apptest.WantProblem(t, send(ct, strings.NewReader(`{}`)), http.StatusUnsupportedMediaType, "unsupported_media_type")
				}

				if route.auth {
					// Without a token the body is never looked at.
					r := sendRaw(t, h, http.MethodPost, route.path, jsonType, strings.NewReader(`{`))
					apptest.WantProblem(t, r, http.StatusUnauthorized, "invalid_token")
				}
			})
		}

		t.Run("email syntax and length", func(t *testing.T) {
			const domain = "@example.test"
			longest := strings.Repeat("a", 254-len(domain)) + domain
			tooLong := "a" + longest
			// Passing validation, the longest address meets the ordinary answer for an unknown account.
			apptest.WantProblem(t, h.LoginStep(t, longest, apptest.Password), http.StatusUnauthorized, "invalid_credentials")
			for _, path := range []string{"/v2/auth/register", "/v2/auth/validate-register", "/v2/auth/login",
				"/v2/auth/validate-login", "/v2/auth/password/forgot", "/v2/auth/password/reset"} {
				for _, email := range []string{tooLong, "a@", "@b.c", "a b@c.d", "Name <a@b.c>", "a@b@c.d", "a@b.c, d@e.f", "plain", "a@b.c\r\nBcc: x@y.z"} {
					body := map[string]string{"email": email, "password": apptest.Password, "newPassword": apptest.Password, "emailToken": "123456"}
					p := apptest.WantProblem(t, h.Post(t, path, body), http.StatusBadRequest, "validation_failed")
					if diff := cmp.Diff([]string{"email"}, p.Fields()); diff != "" {
						t.Errorf("%s with %.40q: fields (-want +got):\n%s", path, email, diff)
					}
				}
			}
		})

		t.Run("form and multipart bodies", func(t *testing.T) {
			const email = "form@example.test"
			fields := apptest.Credentials(email, apptest.Password)
			apptest.WantStatus(t, sendRaw(t, h, http.MethodPost, "/v2/auth/register", "application/x-www-form-urlencoded", strings.NewReader(apptest.Form(fields))), http.StatusCreated)
			ct, body := apptest.Multipart(t, apptest.EmailCode(email, h.CodeFor(t, email)))
			apptest.WantStatus(t, sendRaw(t, h, http.MethodPost, "/v2/auth/validate-register", ct, bytes.NewReader(body)), http.StatusOK)

			h.Clock.Advance(h.Config.Codes.ResendCooldown)
			ct, body = apptest.Multipart(t, fields)
			apptest.WantStatus(t, sendRaw(t, h, http.MethodPost, "/v2/auth/login", ct, bytes.NewReader(body)), http.StatusOK)
			form := apptest.Form(apptest.EmailCode(email, h.CodeFor(t, email)))
			r := sendRaw(t, h, http.MethodPost, "/v2/auth/validate-login", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form))
			apptest.WantStatus(t, r, http.StatusOK)
			p := r.TokenPair(t)

			r = sendRaw(t, h, http.MethodPost, "/v2/auth/logout", "application/x-www-form-urlencoded", strings.NewReader(apptest.Form(map[string]string{"refreshToken": p.RefreshToken, "all": "maybe"})))
			got := apptest.WantProblem(t, r, http.StatusBadRequest, "validation_failed")
			if diff := cmp.Diff([]string{"all"}, got.Fields()); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data"} {
				apptest.WantProblem(t, sendRaw(t, h, http.MethodPost, "/v2/auth/login", ct, strings.NewReader("%zz=&&=")), http.StatusBadRequest, "malformed_request")
			}
		})

		t.Run("routes and methods", func(t *testing.T) {
			for _, c := range []struct {
				method, path string
				headers      []string
				status       int
				code         string
			}{
				{http.MethodGet, "/v2/auth/nope", nil, http.StatusNotFound, "not_found"},
				{http.MethodPost, "/v2/nothing", nil, http.StatusNotFound, "not_found"},
				{http.MethodGet, "/", nil, http.StatusNotFound, "not_found"},
				{http.MethodGet, "/v2/sandbox/emails?to=a@b.c", nil, http.StatusNotFound, "not_found"},
				{http.MethodGet, "/v2/auth/login", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
				{http.MethodPut, "/v2/auth/register", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
				{http.MethodPut, "/v2/auth/me", auth, http.StatusMethodNotAllowed, "method_not_allowed"},
				{http.MethodPost, "/v2/auth/me/export", auth, http.StatusMethodNotAllowed, "method_not_allowed"},
				{http.MethodDelete, "/v2/auth/me", nil, http.StatusUnauthorized, "invalid_token"},
				{http.MethodPost, "/v2/auth/sessions", auth, http.StatusMethodNotAllowed, "method_not_allowed"},
				{http.MethodGet, "/v2/auth/me", nil, http.StatusUnauthorized, "invalid_token"},
				{http.MethodGet, "/v2/auth/me", []string{"Authorization", "Bearer not.a.jwt"}, http.StatusUnauthorized, "invalid_token"},
				{http.MethodGet, "/v2/auth/me", []string{"Authorization", "Basic YTpi"}, http.StatusUnauthorized, "invalid_token"},
				{http.MethodGet, "/v2/auth/sessions", []string{"Authorization", "Bearer " + strings.Repeat("x", 4096)}, http.StatusUnauthorized, "invalid_token"},
				{http.MethodDelete, "/v2/auth/sessions/not-a-uuid", auth, http.StatusNotFound, "not_found"},
				{http.MethodDelete, "/v2/auth/sessions/7c9e6679-7425-40de-944b-e07fc1f90ae7", auth, http.StatusNotFound, "not_found"},
				{http.MethodDelete, "/v2/auth/sessions/%00%ff", auth, http.StatusNotFound, "not_found"},
				{http.MethodDelete, "/v2/auth/sessions/x", nil, http.StatusUnauthorized, "invalid_token"},
			} {
				r := sendRaw(t, h, c.method, c.path, "", nil, c.headers...)
				if r.Status != c.status {
					t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, r.Status, c.status, r.Body)
					continue
				}
				apptest.WantProblem(t, r, c.status, c.code)
			}
		})
	})
}
