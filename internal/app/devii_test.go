package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// deviiClient is written from Devii's documentation (seed 004) alone: POST the auth URL with login,
// password and tenantid as form data, read access_token, refresh_token and routes; GET the same URL
// with the refresh token as a Bearer to refresh. It knows nothing of Latch.
type deviiClient struct {
	authURL string
	http    *http.Client
}

// deviiAnswer is every field the documentation names, success and error alike.
type deviiAnswer struct {
	Status       int               // the HTTP status
	AccessToken  string            `json:"access_token"`
	RefreshToken string            `json:"refresh_token"`
	Message      string            `json:"message"`
	RoleID       any               `json:"roleid"`
	Routes       map[string]string `json:"routes"`
	Error        string            `json:"error"`
	ErrStatus    int               `json:"status"`
}

// login sends the documentation's FormData request (multipart, as a browser's FormData is).
func (c deviiClient) login(t *testing.T, fields map[string]string) deviiAnswer {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	req, err := http.NewRequest(http.MethodPost, c.authURL, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return c.do(t, req)
}

func (c deviiClient) refresh(t *testing.T, refreshToken string) deviiAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.authURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if refreshToken != "" {
		req.Header.Set("Authorization", "Bearer "+refreshToken)
	}
	return c.do(t, req)
}

func (c deviiClient) do(t *testing.T, req *http.Request) deviiAnswer {
	t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want JSON; body %s", req.Method, req.URL, ct, raw)
	}
	a := deviiAnswer{Status: res.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: %s is not Devii's shape: %v", req.Method, req.URL, raw, err)
	}
	return a
}

func newDeviiClient(h *apptest.Instance, path string) deviiClient {
	return deviiClient{authURL: h.URL + path, http: &http.Client{}}
}

// wantLoggedIn checks the documented success shape.
func wantLoggedIn(t *testing.T, a deviiAnswer, login string, routes map[string]string) {
	t.Helper()
	if a.Status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" || a.Message != "Logged in as "+login+"." {
		t.Fatalf("answer %+v: want 200 with access_token, refresh_token and message %q", a, "Logged in as "+login+".")
	}
	if diff := cmp.Diff(routes, a.Routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if a.RoleID == nil {
		t.Error("no roleid")
	}
}

func wantDeviiError(t *testing.T, a deviiAnswer, status int, message string) {
	t.Helper()
	if a.Status != status || a.ErrStatus != status || a.Error == "" || message != "" && a.Error != message {
		t.Errorf("answer %+v: want status %d in the header and the body, error %q", a, status, message)
	}
}

var tenant179Routes = map[string]string{"base": "https://api.example.test/", "query": "https://api.example.test/query"}

func TestDeviiLoginInOneCall(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "179", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff), Routes: apptest.Routes(t, tenant179Routes)})
		const login = "demo_user@example.test"
		u := h.CreateAccount(t, "179", login, "demouser password")
		c := newDeviiClient(h, "/devii/auth")

		a := c.login(t, map[string]string{"login": login, "password": "demouser password", "tenantid": "179"})
		wantLoggedIn(t, a, login, tenant179Routes)
		if a.RoleID != "user" {
			t.Errorf("roleid = %v, want the user's role", a.RoleID)
		}
		_, claims := apptest.DecodeJWT(t, a.AccessToken)
		if claims["sub"] != u.ID || claims["tid"] != "179" || claims["role"] != "user" {
			t.Errorf("access token claims %v", claims)
		}
		h.Me(t, a.AccessToken)

		// Refresh with the refresh token as a Bearer: the same shape, rotated.
		next := c.refresh(t, a.RefreshToken)
		wantLoggedIn(t, next, login, tenant179Routes)
		if next.RefreshToken == a.RefreshToken || next.AccessToken == a.AccessToken {
			t.Error("a refresh in a rotating tenant answered the same tokens")
		}
		// A numeric role answers as Devii's numeric roleid.
		if _, err := h.App.Service.UpdateUser(t.Context(), apptest.Operator, u.ID, auth.UserInput{Role: apptest.Ptr("1611")}); err != nil {
			t.Fatal(err)
		}
		if got := c.refresh(t, next.RefreshToken).RoleID; got != float64(1611) {
			t.Errorf("roleid = %#v for role 1611, want the number", got)
		}

		// The documentation's answers to bad credentials, an unknown tenant and a missing header.
		wantDeviiError(t, c.login(t, map[string]string{"login": login, "password": "wrong", "tenantid": "179"}), http.StatusForbidden, "Invalid credentials.")
		wantDeviiError(t, c.login(t, map[string]string{"login": login, "password": "demouser password", "tenantid": "180"}), http.StatusForbidden, "Invalid credentials.")
		wantDeviiError(t, c.login(t, map[string]string{"login": "demo_user", "password": "demouser password", "tenantid": "179"}), http.StatusForbidden, "Invalid credentials.")
		wantDeviiError(t, c.refresh(t, ""), http.StatusUnauthorized, "Unauthorized access: Missing Authorization Header")
		wantDeviiError(t, c.refresh(t, "lrt_not-a-token"), http.StatusUnauthorized, "")

		// Spent after the grace: the whole session ends, as on v2.
		h.Clock.Advance(h.Config.Tokens.RefreshReuseGrace + time.Second)
		wantDeviiError(t, c.refresh(t, a.RefreshToken), http.StatusUnauthorized, "")
		apptest.WantProblem(t, h.Refresh(t, next.RefreshToken), http.StatusUnauthorized, auth.CodeSessionRevoked)
	})
}

func TestDeviiLoginInTwoCalls(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "acme", apptest.Settings{Routes: apptest.Routes(t, tenant179Routes)})
		const login = "ann@example.test"
		h.CreateAccount(t, "acme", login, apptest.Password)
		c := newDeviiClient(h, "/devii/auth")
		fields := map[string]string{"login": login, "password": apptest.Password, "tenantid": "acme"}

		first := c.login(t, fields)
		wantDeviiError(t, first, http.StatusUnauthorized, "")
		if !strings.HasPrefix(first.Error, "One-time code required:") || !strings.Contains(first.Error, "emailed") {
			t.Errorf("first call: error %q, want it to say a one-time code was emailed", first.Error)
		}
		code := h.CodeFor(t, login)

		fields["otp"] = apptest.OtherCode(code)
		wantDeviiError(t, c.login(t, fields), http.StatusUnauthorized, "")
		fields["otp"] = code
		a := c.login(t, fields)
		wantLoggedIn(t, a, login, tenant179Routes)
		if amr := apptest.Claim(t, a.AccessToken, "tid"); amr != "acme" {
			t.Errorf("tid = %q", amr)
		}
		_, claims := apptest.DecodeJWT(t, a.AccessToken)
		if diff := cmp.Diff([]any{"pwd", "otp"}, claims["amr"]); diff != "" {
			t.Errorf("amr (-want +got):\n%s", diff)
		}
		// The code is spent.
		wantDeviiError(t, c.login(t, fields), http.StatusUnauthorized, "")
	})
}

func TestDeviiUnderTheTenantPrefixAndWithoutRotation(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "179", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff), RefreshRotation: apptest.Ptr(false)})
		const login = "kept@example.test"
		h.CreateAccount(t, "179", login, apptest.Password)
		c := newDeviiClient(h, "/t/179/devii/auth")

		// The path names the tenant: no tenantid needed, the same one is fine, another is refused.
		a := c.login(t, map[string]string{"login": login, "password": apptest.Password})
		wantLoggedIn(t, a, login, map[string]string{})
		wantLoggedIn(t, c.login(t, map[string]string{"login": login, "password": apptest.Password, "tenantid": "179"}), login, map[string]string{})
		wantDeviiError(t, c.login(t, map[string]string{"login": login, "password": apptest.Password, "tenantid": "default"}), http.StatusBadRequest, "")

		for range 3 {
			h.Clock.Advance(time.Minute)
			next := c.refresh(t, a.RefreshToken)
			wantLoggedIn(t, next, login, map[string]string{})
			if next.RefreshToken != a.RefreshToken {
				t.Fatal("a tenant without rotation answered a new refresh token")
			}
		}
		apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", map[string]string{"refreshToken": a.RefreshToken}), http.StatusNoContent)
		wantDeviiError(t, c.refresh(t, a.RefreshToken), http.StatusUnauthorized, "")
	})
}

func TestDeviiBodiesAndErrorsKeepItsShape(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	h.CreateTenant(t, "179", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff)})
	const login = "shape@example.test"
	h.CreateAccount(t, "179", login, apptest.Password)
	c := newDeviiClient(h, "/devii/auth")
	send := func(method, path, contentType string, body io.Reader) deviiAnswer {
		t.Helper()
		req, err := http.NewRequest(method, h.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return c.do(t, req)
	}

	// JSON, with a numeric tenantid as Devii's are, and URL-encoded forms work like FormData.
	wantLoggedIn(t, send(http.MethodPost, "/devii/auth", "application/json",
		strings.NewReader(`{"login":"shape@example.test","password":"`+apptest.Password+`","tenantid":179}`)), login, map[string]string{})
	form := url.Values{"login": {login}, "password": {apptest.Password}, "tenantid": {"179"}}
	wantLoggedIn(t, send(http.MethodPost, "/devii/auth", "application/x-www-form-urlencoded", strings.NewReader(form.Encode())), login, map[string]string{})

	for name, a := range map[string]deviiAnswer{
		"not JSON":           send(http.MethodPost, "/devii/auth", "application/json", strings.NewReader(`{"login":`)),
		"login not a string": send(http.MethodPost, "/devii/auth", "application/json", strings.NewReader(`{"login":{"x":1}}`)),
		"text/plain":         send(http.MethodPost, "/devii/auth", "text/plain", strings.NewReader("login=x")),
		"over 64 KiB":        send(http.MethodPost, "/devii/auth", "application/json", strings.NewReader(`{"login":"`+strings.Repeat("a", 70<<10)+`"}`)),
		"unknown route":      send(http.MethodGet, "/devii/nope", "", nil),
		"wrong method":       send(http.MethodDelete, "/devii/auth", "", nil),
		"empty body":         send(http.MethodPost, "/devii/auth", "", nil),
		"malformed otp":      send(http.MethodPost, "/devii/auth", "application/json", strings.NewReader(`{"login":"x@example.test","password":"p","tenantid":"default","otp":"12"}`)),
	} {
		if a.Status < 400 || a.Status >= 500 || a.ErrStatus != a.Status || a.Error == "" {
			t.Errorf("%s: %+v, want a 4xx in Devii's shape", name, a)
		}
	}
	wantDeviiError(t, c.refresh(t, ""), http.StatusUnauthorized, "Unauthorized access: Missing Authorization Header")
	// Bad input is the client's mistake, not a failure of the server: nothing is logged as an error.
	if strings.Contains(h.Logs(), `"level":"ERROR"`) {
		t.Errorf("bad input to Devii logged an error:\n%s", h.Logs())
	}
}

func TestDeviiCanBeSwitchedOffAndMoved(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Surfaces.Devii.Enabled = false })
	apptest.WantProblem(t, h.Post(t, "/devii/auth", apptest.Credentials("a@example.test", "x")), http.StatusNotFound, auth.CodeNotFound)

	moved := apptest.New(t, store.SQLite, func(c *config.Config) {
		c.Surfaces.Devii.Prefix = "/api/devii"
		c.DefaultTenant.SecondStep = auth.SecondStepOff
	})
	moved.CreateAccount(t, "", "moved@example.test", apptest.Password)
	a := newDeviiClient(moved, "/api/devii/auth").login(t, map[string]string{"login": "moved@example.test", "password": apptest.Password, "tenantid": "default"})
	wantLoggedIn(t, a, "moved@example.test", map[string]string{})
}

// TestDeviiAnswersAreCountedAsSent: the request metrics count the status Devii answered, not the
// status v2 would have given the same error.
func TestDeviiAnswersAreCountedAsSent(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	c := newDeviiClient(h, "/devii/auth")
	wantDeviiError(t, c.login(t, map[string]string{"login": "nobody@example.test", "password": "wrong", "tenantid": "default"}), http.StatusForbidden, "Invalid credentials.")
	metrics := string(h.Get(t, "/metrics").Body)
	if want := `latch_http_requests_total{method="POST",route="/devii/auth",status="403"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
