package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

// directusTokens is the data of a Directus login or refresh answer.
type directusTokens struct {
	AccessToken  string `json:"access_token"`
	Expires      int64  `json:"expires"`
	RefreshToken string `json:"refresh_token"`
}

type directusError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// directusData decodes a Directus success, {"data": ...}, into v.
func directusData(t *testing.T, r apptest.Response, status int, v any) {
	t.Helper()
	apptest.WantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	r.JSON(t, &env)
	if err := json.Unmarshal(env.Data, v); err != nil || len(env.Data) == 0 {
		t.Fatalf("data of %s: %v", r.Body, err)
	}
}

// wantDirectusError requires Directus' error envelope with one error of the code, as application/json
// (the SDK parses no other type), and a message; a 429 must also say when to retry.
func wantDirectusError(t *testing.T, r apptest.Response, status int, code string) directusError {
	t.Helper()
	apptest.WantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, r.Body)
	}
	var body struct {
		Errors []directusError `json:"errors"`
	}
	r.JSON(t, &body)
	if len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != code || body.Errors[0].Message == "" {
		t.Fatalf("errors = %+v, want one %s with a message; body %s", body.Errors, code, r.Body)
	}
	if status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	return body.Errors[0]
}

func directusLogin(email, password, otp, mode string) map[string]string {
	body := map[string]string{"email": email, "password": password, "mode": mode}
	if otp != "" {
		body["otp"] = otp
	}
	return body
}

// directusSignIn runs the two-call login of an email-code user and returns the second answer.
func directusSignIn(t *testing.T, h *apptest.Instance, email, mode string) apptest.Response {
	t.Helper()
	h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
	e := wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, "", mode)), http.StatusUnauthorized, "INVALID_OTP")
	if !strings.Contains(e.Message, "emailed") {
		t.Errorf("the first call's message %q does not say that a code was emailed", e.Message)
	}
	return h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, h.CodeFor(t, email), mode))
}

type directusMe struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	TFAEnabled    bool   `json:"tfa_enabled"`
	Tenant        string `json:"tenant"`
	Role          string `json:"role"`
}

func TestDirectusLoginInTwoCallsRefreshAndLogout(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "directus@example.test"
		h.Signup(t, email, apptest.Password)

		var pair directusTokens
		directusData(t, directusSignIn(t, h, email, "json"), http.StatusOK, &pair)
		if pair.AccessToken == "" || !strings.HasPrefix(pair.RefreshToken, "lrt_") || pair.Expires != h.Config.Tokens.AccessTTL.Milliseconds() {
			t.Fatalf("login data = %+v; want both tokens and expires %d ms", pair, h.Config.Tokens.AccessTTL.Milliseconds())
		}
		var me directusMe
		directusData(t, h.Get(t, "/directus/users/me?fields=*", apptest.Bearer(pair.AccessToken)...), http.StatusOK, &me)
		want := directusMe{ID: apptest.Claim(t, pair.AccessToken, "sub"), Email: email, EmailVerified: true, Tenant: auth.DefaultTenantID, Role: "user"}
		if diff := cmp.Diff(want, me); diff != "" {
			t.Errorf("users/me (-want +got):\n%s", diff)
		}

		// Refresh rotates under the rules of /v2: the spent token's replay after the grace ends the
		// session for every surface.
		var next directusTokens
		directusData(t, h.Post(t, "/directus/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken, "mode": "json"}), http.StatusOK, &next)
		if next.RefreshToken == pair.RefreshToken || next.AccessToken == "" {
			t.Fatalf("refresh answered %+v: want a new pair", next)
		}
		h.Clock.Advance(h.Config.Tokens.RefreshReuseGrace + time.Second)
		wantDirectusError(t, h.Post(t, "/directus/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		apptest.WantProblem(t, h.Refresh(t, next.RefreshToken), http.StatusUnauthorized, "session_revoked")

		// Logout ends the session of the refresh token given.
		directusData(t, directusSignIn(t, h, email, "json"), http.StatusOK, &pair)
		r := h.Post(t, "/directus/auth/logout", map[string]string{"refresh_token": pair.RefreshToken, "mode": "json"})
		apptest.WantStatus(t, r, http.StatusNoContent)
		if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
			t.Errorf("logout answered a body or a Content-Type: %q %q", r.Header.Get("Content-Type"), r.Body)
		}
		wantDirectusError(t, h.Post(t, "/directus/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}), http.StatusUnauthorized, "INVALID_CREDENTIALS")
	})
}

func TestDirectusCookieAndSessionModes(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	const email = "modes@example.test"
	h.Signup(t, email, apptest.Password)

	r := directusSignIn(t, h, email, "cookie")
	var pair directusTokens
	directusData(t, r, http.StatusOK, &pair)
	refresh := apptest.Cookie(t, r, "directus_refresh_token")
	if pair.AccessToken == "" || pair.RefreshToken != "" || !refresh.HttpOnly || refresh.SameSite != http.SameSiteStrictMode ||
		refresh.Path != "/directus/auth" || !strings.HasPrefix(refresh.Value, "lrt_") {
		t.Fatalf("cookie mode: data %+v, cookie %+v", pair, refresh)
	}
	// Without a body token the mode defaults to cookie, and the cookie rotates.
	r = h.Post(t, "/directus/auth/refresh", nil, "Cookie", "directus_refresh_token="+refresh.Value)
	pair = directusTokens{}
	directusData(t, r, http.StatusOK, &pair)
	if next := apptest.Cookie(t, r, "directus_refresh_token"); next.Value == refresh.Value || pair.RefreshToken != "" {
		t.Fatalf("refresh by cookie: data %+v, cookie %+v", pair, next)
	}

	r = directusSignIn(t, h, email, "session")
	pair = directusTokens{}
	directusData(t, r, http.StatusOK, &pair)
	session := apptest.Cookie(t, r, "directus_session_token")
	refresh = apptest.Cookie(t, r, "directus_refresh_token")
	if pair.AccessToken != "" || pair.RefreshToken != "" || pair.Expires == 0 || !session.HttpOnly || session.Path != "/directus" {
		t.Fatalf("session mode: data %+v, session cookie %+v", pair, session)
	}
	var me directusMe
	directusData(t, h.Get(t, "/directus/users/me", "Cookie", "directus_session_token="+session.Value), http.StatusOK, &me)
	if me.Email != email {
		t.Errorf("users/me by session cookie = %+v", me)
	}
	r = h.Post(t, "/directus/auth/refresh", map[string]string{"mode": "session"}, "Cookie", "directus_refresh_token="+refresh.Value)
	pair = directusTokens{}
	directusData(t, r, http.StatusOK, &pair)
	if next := apptest.Cookie(t, r, "directus_session_token"); next.Value == session.Value || pair.AccessToken != "" {
		t.Fatalf("session refresh: data %+v, session cookie %+v", pair, next)
	}
	session = apptest.Cookie(t, r, "directus_session_token")
	refresh = apptest.Cookie(t, r, "directus_refresh_token")

	// A session-mode client logs out with its session cookie alone; both cookies are cleared.
	r = h.Post(t, "/directus/auth/logout", map[string]string{"mode": "session"}, "Cookie", "directus_session_token="+session.Value)
	apptest.WantStatus(t, r, http.StatusNoContent)
	for _, name := range []string{"directus_session_token", "directus_refresh_token"} {
		if c := apptest.Cookie(t, r, name); c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("logout left cookie %+v", c)
		}
	}
	wantDirectusError(t, h.Post(t, "/directus/auth/refresh", map[string]string{"mode": "session"}, "Cookie", "directus_refresh_token="+refresh.Value),
		http.StatusUnauthorized, "INVALID_CREDENTIALS")
}

func TestDirectusTwoFactor(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "tfa@example.test"
		access := apptest.Bearer(h.Signup(t, email, apptest.Password).AccessToken)

		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/enable", map[string]string{"secret": "X", "otp": "123456"}, access...), http.StatusBadRequest, "INVALID_PAYLOAD")
		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/generate", map[string]string{"password": "not the password"}, access...), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		var setup struct {
			Secret     string `json:"secret"`
			OTPAuthURL string `json:"otpauth_url"`
		}
		directusData(t, h.Post(t, "/directus/users/me/tfa/generate", map[string]string{"password": apptest.Password}, access...), http.StatusOK, &setup)
		if setup.Secret == "" || !strings.HasPrefix(setup.OTPAuthURL, "otpauth://totp/") {
			t.Fatalf("generate = %+v", setup)
		}
		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/enable", map[string]string{"secret": setup.Secret, "otp": wrongTOTP(t, setup.Secret, h.Clock.Now())}, access...),
			http.StatusUnauthorized, "INVALID_OTP")
		r := h.Post(t, "/directus/users/me/tfa/enable", map[string]string{"secret": setup.Secret, "otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}, access...)
		apptest.WantStatus(t, r, http.StatusNoContent)
		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/generate", map[string]string{"password": apptest.Password}, access...), http.StatusBadRequest, "INVALID_PAYLOAD")
		var me directusMe
		directusData(t, h.Get(t, "/directus/users/me", access...), http.StatusOK, &me)
		if !me.TFAEnabled {
			t.Error("users/me does not say tfa_enabled")
		}

		// One call with the authenticator's code; without it, no email and a message that says so.
		h.Clock.Advance(30 * time.Second)
		e := wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, "", "json")), http.StatusUnauthorized, "INVALID_OTP")
		if !strings.Contains(e.Message, "no code was emailed") {
			t.Errorf("message %q does not say that no code was emailed", e.Message)
		}
		code := apptest.TOTPCode(t, setup.Secret, h.Clock.Now())
		var pair directusTokens
		directusData(t, h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, code, "json")), http.StatusOK, &pair)
		wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, code, "json")), http.StatusUnauthorized, "INVALID_OTP")

		h.Clock.Advance(30 * time.Second)
		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/disable", map[string]string{"otp": code}, access...), http.StatusUnauthorized, "INVALID_OTP")
		apptest.WantStatus(t, h.Post(t, "/directus/users/me/tfa/disable", map[string]string{"otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}, access...),
			http.StatusNoContent)
		wantDirectusError(t, h.Post(t, "/directus/users/me/tfa/disable", map[string]string{"otp": "123456"}, access...), http.StatusBadRequest, "INVALID_PAYLOAD")
		// The authenticator's notices (turned on, turned off) come before the next login's code.
		h.MailTo(t, email)
		h.MailTo(t, email)
		directusData(t, directusSignIn(t, h, email, "json"), http.StatusOK, &pair)
	})
}

// wrongTOTP is a well-formed code that no step within the skew accepts.
func wrongTOTP(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	window := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		window[apptest.TOTPCode(t, secret, at.Add(d))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !window[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func TestDirectusBadInput(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "bad-directus@example.test"
		pair := h.Signup(t, email, apptest.Password)
		access := apptest.Bearer(pair.AccessToken)
		const jsonType = "application/json"
		raw := func(body string) apptest.Raw {
			return apptest.Raw{ContentType: jsonType, Body: strings.NewReader(body)}
		}

		for _, c := range []struct {
			name, method, path string
			body               any
			headers            []string
			status             int
			code               string
		}{
			{"mode not one of three", http.MethodPost, "/directus/auth/login", directusLogin(email, apptest.Password, "", "xml"), nil, 400, "INVALID_PAYLOAD"},
			{"otp of five digits", http.MethodPost, "/directus/auth/login", directusLogin(email, apptest.Password, "12345", "json"), nil, 400, "INVALID_PAYLOAD"},
			{"otp neither digits nor a recovery code", http.MethodPost, "/directus/auth/login", directusLogin(email, apptest.Password, "one-two", "json"), nil, 400, "INVALID_PAYLOAD"},
			{"email of the wrong type", http.MethodPost, "/directus/auth/login", raw(`{"email":5,"password":"x"}`), nil, 400, "INVALID_PAYLOAD"},
			{"otp of the wrong type", http.MethodPost, "/directus/auth/login", raw(`{"email":"a@b.test","password":"x","otp":123456}`), nil, 400, "INVALID_PAYLOAD"},
			{"mode of the wrong type", http.MethodPost, "/directus/auth/refresh", raw(`{"refresh_token":"lrt_x","mode":true}`), nil, 400, "INVALID_PAYLOAD"},
			{"no credentials", http.MethodPost, "/directus/auth/login", raw(`{}`), nil, 400, "INVALID_PAYLOAD"},
			{"not JSON", http.MethodPost, "/directus/auth/login", raw(`{"email":`), nil, 400, "INVALID_PAYLOAD"},
			{"an array", http.MethodPost, "/directus/auth/login", raw(`[]`), nil, 400, "INVALID_PAYLOAD"},
			{"text/plain", http.MethodPost, "/directus/auth/login", apptest.Raw{ContentType: "text/plain", Body: strings.NewReader("x")}, nil, 415, "UNSUPPORTED_MEDIA_TYPE"},
			{"over 64 KiB", http.MethodPost, "/directus/auth/login", raw(`{"email":"` + strings.Repeat("a", 70<<10) + `"}`), nil, 413, "CONTENT_TOO_LARGE"},
			{"wrong password", http.MethodPost, "/directus/auth/login", directusLogin(email, "not the password", "", "json"), nil, 401, "INVALID_CREDENTIALS"},
			{"wrong emailed code", http.MethodPost, "/directus/auth/login", directusLogin(email, apptest.Password, "000000", "json"), nil, 401, "INVALID_OTP"},
			{"refresh without a token", http.MethodPost, "/directus/auth/refresh", raw(`{"mode":"json"}`), nil, 400, "INVALID_PAYLOAD"},
			{"refresh of the wrong mode", http.MethodPost, "/directus/auth/refresh", raw(`{"refresh_token":"lrt_x","mode":"jwt"}`), nil, 400, "INVALID_PAYLOAD"},
			{"refresh with garbage", http.MethodPost, "/directus/auth/refresh", raw(`{"refresh_token":"garbage"}`), nil, 401, "INVALID_CREDENTIALS"},
			{"logout without a token", http.MethodPost, "/directus/auth/logout", raw(`{}`), nil, 400, "INVALID_PAYLOAD"},
			{"me without a token", http.MethodGet, "/directus/users/me", nil, nil, 403, "INVALID_TOKEN"},
			{"me with a bad token", http.MethodGet, "/directus/users/me", nil, apptest.Bearer("not.a.jwt"), 403, "INVALID_TOKEN"},
			{"generate without a token", http.MethodPost, "/directus/users/me/tfa/generate", raw(`{`), nil, 403, "INVALID_TOKEN"},
			{"generate without a password", http.MethodPost, "/directus/users/me/tfa/generate", raw(`{}`), access, 400, "INVALID_PAYLOAD"},
			{"generate with a password of the wrong type", http.MethodPost, "/directus/users/me/tfa/generate", raw(`{"password":["x"]}`), access, 400, "INVALID_PAYLOAD"},
			{"enable without setup", http.MethodPost, "/directus/users/me/tfa/enable", raw(`{"secret":"ABC","otp":"123456"}`), access, 400, "INVALID_PAYLOAD"},
			{"enable with an otp of the wrong type", http.MethodPost, "/directus/users/me/tfa/enable", raw(`{"secret":"ABC","otp":123456}`), access, 400, "INVALID_PAYLOAD"},
			{"disable while off", http.MethodPost, "/directus/users/me/tfa/disable", raw(`{"otp":"123456"}`), access, 400, "INVALID_PAYLOAD"},
			{"disable without an otp", http.MethodPost, "/directus/users/me/tfa/disable", raw(`{}`), access, 400, "INVALID_PAYLOAD"},
			{"unknown route", http.MethodGet, "/directus/items/articles", nil, nil, 404, "ROUTE_NOT_FOUND"},
			{"wrong method", http.MethodGet, "/directus/auth/login", nil, nil, 404, "ROUTE_NOT_FOUND"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := h.Do(t, c.method, c.path, c.body, c.headers...)
				wantDirectusError(t, r, c.status, c.code)
			})
		}

		t.Run("expired access token", func(t *testing.T) {
			h.Clock.Advance(h.Config.Tokens.AccessTTL + token.ClockLeeway + time.Second)
			wantDirectusError(t, h.Get(t, "/directus/users/me", access...), http.StatusUnauthorized, "TOKEN_EXPIRED")
		})
		t.Run("suspended user", func(t *testing.T) {
			id := apptest.Claim(t, pair.AccessToken, "sub")
			if err := h.App.Store.SetUserStatus(t.Context(), id, auth.StatusDisabled, auth.Event{UserID: id, Kind: "disabled"}); err != nil {
				t.Fatal(err)
			}
			wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin(email, apptest.Password, "", "json")), http.StatusUnauthorized, "USER_SUSPENDED")
		})
	})
}

func TestDirectusThrottledAnswersInItsShape(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.RateLimit.IPPerMinute, c.RateLimit.IPBurst = 60, 1 })
	wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin("nobody@example.test", "wrong password", "", "json")), http.StatusUnauthorized, "INVALID_CREDENTIALS")
	wantDirectusError(t, h.Post(t, "/directus/auth/login", directusLogin("nobody@example.test", "wrong password", "", "json")), http.StatusTooManyRequests, "REQUESTS_EXCEEDED")
}

func TestDirectusSurfaceCanBeSwitchedOff(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Surfaces.Directus.Enabled = false })
	r := h.Post(t, "/directus/auth/login", directusLogin("a@example.test", apptest.Password, "", "json"))
	apptest.WantProblem(t, r, http.StatusNotFound, "not_found")
	if bytes.Contains(r.Body, []byte("errors")) {
		t.Errorf("a switched-off surface answered in its own shape: %s", r.Body)
	}
}

func TestDirectusAccessTokenSources(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_query_param=%v", allow), func(t *testing.T) {
			h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.AllowQueryParam = allow })
			access := h.Signup(t, "sources@example.test", apptest.Password).AccessToken
			for _, headers := range [][]string{
				{"Authorization", "Bearer " + access}, {"Authorization", "JWT " + access},
				{"Authentication", "JWT " + access}, {"Cookie", "directus_session_token=" + access},
			} {
				var me directusMe
				directusData(t, h.Get(t, "/directus/users/me", headers...), http.StatusOK, &me)
			}
			r := h.Get(t, "/directus/users/me?access_token="+access)
			if allow {
				var me directusMe
				directusData(t, r, http.StatusOK, &me)
			} else {
				wantDirectusError(t, r, http.StatusForbidden, "INVALID_TOKEN")
			}
		})
	}
}

func TestDirectusUnderTheTenantPrefix(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "ann@example.test"
		h.CreateTenant(t, "acme", apptest.Settings{})
		h.CreateTenant(t, "quick", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff)})
		h.CreateAccount(t, "acme", email, apptest.Password)
		h.CreateAccount(t, "quick", email, apptest.Password)
		h.CreateAccount(t, "", email, "the default tenant's password")

		// Two calls under /t/acme: the tenant comes from the path, the cookie stays under it.
		e := wantDirectusError(t, h.Post(t, "/t/acme/directus/auth/login", directusLogin(email, apptest.Password, "", "cookie")), http.StatusUnauthorized, "INVALID_OTP")
		if !strings.Contains(e.Message, "emailed") {
			t.Errorf("message %q does not say that a code was emailed", e.Message)
		}
		r := h.Post(t, "/t/acme/directus/auth/login", directusLogin(email, apptest.Password, h.CodeFor(t, email), "cookie"))
		var pair directusTokens
		directusData(t, r, http.StatusOK, &pair)
		if got := apptest.Claim(t, pair.AccessToken, "tid"); got != "acme" {
			t.Errorf("tid = %q, want acme", got)
		}
		if c := apptest.Cookie(t, r, "directus_refresh_token"); c.Path != "/t/acme/directus/auth" {
			t.Errorf("refresh cookie path %q, want /t/acme/directus/auth", c.Path)
		}
		var me directusMe
		directusData(t, h.Get(t, "/t/acme/directus/users/me", apptest.Bearer(pair.AccessToken)...), http.StatusOK, &me)
		if me.Tenant != "acme" || me.Email != email {
			t.Errorf("users/me = %+v", me)
		}
		// Another tenant's password is not this tenant's.
		wantDirectusError(t, h.Post(t, "/t/acme/directus/auth/login", directusLogin(email, "the default tenant's password", "", "json")),
			http.StatusUnauthorized, "INVALID_CREDENTIALS")
		wantDirectusError(t, h.Post(t, "/t/nope/directus/auth/login", directusLogin(email, apptest.Password, "", "json")), http.StatusBadRequest, "INVALID_PAYLOAD")
		wantDirectusError(t, h.Get(t, "/t/acme/directus/items/articles"), http.StatusNotFound, "ROUTE_NOT_FOUND")

		// A tenant whose second step is off answers tokens on the first call.
		pair = directusTokens{}
		directusData(t, h.Post(t, "/t/quick/directus/auth/login", directusLogin(email, apptest.Password, "", "json")), http.StatusOK, &pair)
		_, claims := apptest.DecodeJWT(t, pair.AccessToken)
		if diff := cmp.Diff([]any{"pwd"}, claims["amr"]); diff != "" || claims["tid"] != "quick" || pair.RefreshToken == "" {
			t.Errorf("one-call login: claims %v, refresh %q (amr -want +got:\n%s)", claims, pair.RefreshToken, diff)
		}
		var next directusTokens
		directusData(t, h.Post(t, "/t/quick/directus/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken, "mode": "json"}), http.StatusOK, &next)
	})
}
