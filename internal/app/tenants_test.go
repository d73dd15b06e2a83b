package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// signupIn registers and validates an account through v2 under a path prefix ("" or /t/{id}) with an
// optional body tenantId, returning its first token pair.
func signupIn(t *testing.T, h *apptest.Instance, prefix, bodyTenant, email string) apptest.TokenPair {
	t.Helper()
	body := apptest.Credentials(email, apptest.Password)
	if bodyTenant != "" {
		body["tenantId"] = bodyTenant
	}
	apptest.WantStatus(t, h.Post(t, prefix+"/v2/auth/register", body), http.StatusCreated)
	code := apptest.EmailCode(email, h.CodeFor(t, email))
	if bodyTenant != "" {
		code["tenantId"] = bodyTenant
	}
	r := h.Post(t, prefix+"/v2/auth/validate-register", code)
	apptest.WantStatus(t, r, http.StatusOK)
	return r.TokenPair(t)
}

func TestTwoTenantsWithTheSameEmailAreTwoUsers(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const acmeIssuer = "https://auth.acme.test/t/acme/graphql"
		h.CreateTenant(t, "acme", apptest.Settings{Name: apptest.Ptr("Acme"), Issuer: apptest.Ptr(acmeIssuer)})
		const email = "ann@example.test"

		def := h.Signup(t, email, apptest.Password)
		byBody := signupIn(t, h, "", "acme", email)

		tokens := map[string]string{"default": def.AccessToken, "acme": byBody.AccessToken}
		subs := map[string]bool{}
		for tenant, access := range tokens {
			_, claims := apptest.DecodeJWT(t, access)
			wantIss := "latch"
			if tenant == "acme" {
				wantIss = acmeIssuer
			}
			if claims["tid"] != tenant || claims["iss"] != wantIss {
				t.Errorf("%s token: tid %v, iss %v; want %s, %s", tenant, claims["tid"], claims["iss"], tenant, wantIss)
			}
			me := h.Me(t, access)
			if me.TenantID != tenant || me.Email != email {
				t.Errorf("%s token: me = %+v", tenant, me)
			}
			subs[me.ID] = true
			apptest.WantStatus(t, h.Post(t, "/v2/auth/verify", map[string]string{"token": access}), http.StatusOK)
		}
		if len(subs) != 2 {
			t.Errorf("the two tenants' accounts share a user id: %v", subs)
		}

		// Each tenant's password check finds its own account: a login into acme with the default
		// account's session still works, and the throttle of one tenant leaves the other alone.
		for range 6 {
			apptest.WantProblem(t, h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials(email, "wrong password")), http.StatusUnauthorized, auth.CodeInvalidCredentials)
		}
		apptest.WantProblem(t, h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials(email, apptest.Password)), http.StatusTooManyRequests, auth.CodeLoginThrottled)
		h.Login(t, email, apptest.Password)

		// A token's iss must be its own tenant's issuer: once acme names another, acme's outstanding
		// tokens stop verifying and the default tenant's are untouched.
		if _, err := h.App.Service.UpdateTenant(context.Background(), apptest.Operator, "acme", auth.TenantInput{Issuer: apptest.Ptr("https://elsewhere.test")}); err != nil {
			t.Fatal(err)
		}
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me", apptest.Bearer(byBody.AccessToken)...), http.StatusUnauthorized, auth.CodeInvalidToken)
		h.Me(t, def.AccessToken)
		fresh := h.Rotate(t, byBody.RefreshToken)
		if iss := apptest.Claim(t, fresh.AccessToken, "iss"); iss != "https://elsewhere.test" {
			t.Errorf("after the change acme's tokens carry iss %q", iss)
		}
		h.Me(t, fresh.AccessToken)
	})
}

func TestTenantPathPrefix(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "acme", apptest.Settings{})
		const email = "bob@example.test"

		// The path names the tenant; a body naming the same one is fine, another one is refused.
		body := apptest.Credentials(email, apptest.Password)
		body["tenantId"] = "default"
		p := apptest.WantProblem(t, h.Post(t, "/t/acme/v2/auth/register", body), http.StatusBadRequest, auth.CodeValidation)
		if diff := cmp.Diff([]string{"tenantId"}, p.Fields()); diff != "" {
			t.Errorf("contradicting tenant: fields (-want +got):\n%s", diff)
		}
		pair := signupIn(t, h, "/t/acme", "acme", email)
		if tid := apptest.Claim(t, pair.AccessToken, "tid"); tid != "acme" {
			t.Errorf("signed up under /t/acme, the token names tenant %q", tid)
		}
		if _, err := h.App.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email); err == nil {
			t.Error("the signup under /t/acme made an account in the default tenant")
		}

		// Unknown and malformed tenants are a validation error on tenantId, whatever the path says.
		for _, path := range []string{"/t/nope/v2/auth/login", "/t/ACME/v2/auth/login", "/t/a%20b/v2/auth/login"} {
			p := apptest.WantProblem(t, h.Post(t, path, apptest.Credentials(email, apptest.Password)), http.StatusBadRequest, auth.CodeValidation)
			if diff := cmp.Diff([]string{"tenantId"}, p.Fields()); diff != "" {
				t.Errorf("%s: fields (-want +got):\n%s", path, diff)
			}
		}

		// Cookie mode under the prefix sets the cookie for the prefixed routes, and they read it.
		h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
		apptest.WantStatus(t, h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials(email, apptest.Password)), http.StatusOK)
		code := apptest.EmailCode(email, h.CodeFor(t, email))
		code["mode"] = "cookie"
		r := h.Post(t, "/t/acme/v2/auth/validate-login", code)
		apptest.WantStatus(t, r, http.StatusOK)
		cookie := apptest.Cookie(t, r, "latch_refresh")
		if cookie.Path != "/t/acme/v2/auth" {
			t.Errorf("cookie path %q, want /t/acme/v2/auth", cookie.Path)
		}
		r = h.Post(t, "/t/acme/v2/auth/refresh", nil, "Cookie", "latch_refresh="+cookie.Value)
		apptest.WantStatus(t, r, http.StatusOK)

		// Routes without a tenant answer under the prefix too.
		for _, path := range []string{"/t/acme/.well-known/jwks.json", "/t/acme/healthz", "/t/acme/v2/openapi.json"} {
			apptest.WantStatus(t, h.Get(t, path), http.StatusOK)
		}
		me := h.Get(t, "/t/acme/v2/auth/me", apptest.Bearer(pair.AccessToken)...)
		apptest.WantStatus(t, me, http.StatusOK)
		apptest.WantProblem(t, h.Get(t, "/t/acme/v2/no-such-route"), http.StatusNotFound, auth.CodeNotFound)
	})
}

func TestSecondStepOffAnswersTokensAtThePasswordStep(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "quick", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff)})
		const email = "quick@example.test"
		u := h.CreateAccount(t, "quick", email, apptest.Password)

		body := apptest.Credentials(email, apptest.Password)
		body["tenantId"] = "quick"
		r := h.Post(t, "/v2/auth/login", body)
		apptest.WantStatus(t, r, http.StatusOK)
		pair := r.TokenPair(t)
		if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != "Bearer" {
			t.Fatalf("login answered %s, want a token pair", r.Body)
		}
		_, claims := apptest.DecodeJWT(t, pair.AccessToken)
		if diff := cmp.Diff([]any{"pwd"}, claims["amr"]); diff != "" {
			t.Errorf("amr (-want +got):\n%s", diff)
		}
		if claims["sub"] != u.ID || claims["tid"] != "quick" {
			t.Errorf("claims %v: want sub %s, tid quick", claims, u.ID)
		}
		h.Rotate(t, pair.RefreshToken)
		for _, row := range h.OutboxRowsTo(t, email) {
			t.Errorf("a login with the second step off queued a %s email", row.Template)
		}
		apptest.WantProblem(t, h.Post(t, "/t/quick/v2/auth/login", apptest.Credentials(email, "wrong password")), http.StatusUnauthorized, auth.CodeInvalidCredentials)

		// The default tenant keeps its second step.
		h.CreateAccount(t, "", email, apptest.Password)
		r = h.Post(t, "/v2/auth/login", apptest.Credentials(email, apptest.Password))
		var started struct {
			Message   string `json:"message"`
			ExpiresIn int64  `json:"expiresIn"`
		}
		r.JSON(t, &started)
		if started.ExpiresIn == 0 {
			t.Errorf("the default tenant's login answered %s, want a code on its way", r.Body)
		}
	})
}

func TestDefaultTenantSettingsComeFromTheConfiguration(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) {
		c.DefaultTenant.SecondStep = auth.SecondStepOff
		c.DefaultTenant.RefreshRotation = false
		c.DefaultTenant.Issuer = "https://default.example.test"
	})
	const email = "conf@example.test"
	h.CreateAccount(t, "", email, apptest.Password)
	r := h.Post(t, "/v2/auth/login", apptest.Credentials(email, apptest.Password))
	apptest.WantStatus(t, r, http.StatusOK)
	pair := r.TokenPair(t)
	if iss := apptest.Claim(t, pair.AccessToken, "iss"); iss != "https://default.example.test" {
		t.Errorf("iss = %q, want default_tenant.issuer", iss)
	}
	again := h.Refresh(t, pair.RefreshToken)
	apptest.WantStatus(t, again, http.StatusOK)
	if got := again.TokenPair(t).RefreshToken; got != pair.RefreshToken {
		t.Errorf("refresh_rotation false in the config: refresh answered a new refresh token")
	}
	_, err := h.App.Service.UpdateTenant(context.Background(), apptest.Operator, auth.DefaultTenantID, auth.TenantInput{SecondStep: apptest.Ptr(auth.SecondStepEmailCode)})
	if auth.ErrorCode(err) != auth.CodeValidation {
		t.Errorf("changing the default tenant's settings through the service: %v, want a validation error", err)
	}
}

func TestRefreshRotationOffKeepsTheRefreshToken(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "keep", apptest.Settings{RefreshRotation: apptest.Ptr(false)})
		const email = "keep@example.test"
		first := signupIn(t, h, "/t/keep", "", email)

		idle := h.Config.Tokens.RefreshIdleTTL
		access := map[string]bool{first.AccessToken: true}
		// Each use restarts the idle window: three uses, each just inside it, span three idle windows.
		for range 3 {
			h.Clock.Advance(idle - time.Minute)
			r := h.Refresh(t, first.RefreshToken)
			apptest.WantStatus(t, r, http.StatusOK)
			p := r.TokenPair(t)
			if p.RefreshToken != first.RefreshToken {
				t.Fatalf("refresh answered a new refresh token in a tenant without rotation")
			}
			if access[p.AccessToken] {
				t.Error("refresh answered an access token it had answered before")
			}
			access[p.AccessToken] = true
			if want := int64(idle / time.Second); p.RefreshExpiresIn != want {
				t.Errorf("refreshExpiresIn = %d, want the idle window from now (%d)", p.RefreshExpiresIn, want)
			}
		}
		// Presented again at once: no grace, no reuse, the same token.
		apptest.WantStatus(t, h.Refresh(t, first.RefreshToken), http.StatusOK)

		h.Clock.Advance(idle)
		apptest.WantProblem(t, h.Refresh(t, first.RefreshToken), http.StatusUnauthorized, auth.CodeSessionExpired)

		// Still revocable.
		apptest.WantStatus(t, h.Post(t, "/t/keep/v2/auth/login", apptest.Credentials(email, apptest.Password)), http.StatusOK)
		code := apptest.EmailCode(email, h.CodeFor(t, email))
		code["tenantId"] = "keep"
		r := h.Post(t, "/v2/auth/validate-login", code)
		apptest.WantStatus(t, r, http.StatusOK)
		kept := r.TokenPair(t)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", map[string]string{"refreshToken": kept.RefreshToken}), http.StatusNoContent)
		apptest.WantProblem(t, h.Refresh(t, kept.RefreshToken), http.StatusUnauthorized, auth.CodeSessionRevoked)
	})
}

func TestTenantBrandingReachesTheEmails(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const from = "Acme Pay <no-reply@acme.test>"
		h.CreateTenant(t, "acme", apptest.Settings{AppName: apptest.Ptr("Acme Pay"), MailFrom: apptest.Ptr(from), Locale: apptest.Ptr("de")})
		const email = "brand@example.test"
		body := apptest.Credentials(email, apptest.Password)
		apptest.WantStatus(t, h.Post(t, "/t/acme/v2/auth/register", body), http.StatusCreated)
		m := h.MailTo(t, email)
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := mail.ParseAddress(msg.Header.Get("From"))
		if err != nil || got.Address != "no-reply@acme.test" || got.Name != "Acme Pay" {
			t.Errorf("From = %q (%v), want %q", msg.Header.Get("From"), err, from)
		}
		if !strings.Contains(m.Text, "Acme Pay") || strings.Contains(m.Text, "Latch") {
			t.Errorf("the email does not speak as Acme Pay:\n%s", m.Text)
		}
		var rowFrom string
		if err := h.App.Store.SQLDB().QueryRow(`SELECT from_addr FROM outbox WHERE to_addr = 'brand@example.test'`).Scan(&rowFrom); err != nil || rowFrom != from {
			t.Errorf("the outbox row's from_addr = %q (%v), want %q", rowFrom, err, from)
		}

		// The default tenant's mail goes out as configured.
		h.Signup(t, "plain@example.test", apptest.Password)
		if !strings.Contains(h.SMTP.Messages()[len(h.SMTP.Messages())-1].Text, "Latch") {
			t.Error("the default tenant's email does not name Latch")
		}
	})
}

func TestRoleAndMetadataReachMeAndTheToken(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		pair := h.Signup(t, "role@example.test", apptest.Password)
		me := h.Me(t, pair.AccessToken)
		if me.Role != auth.DefaultRole || string(me.Metadata) != "{}" {
			t.Errorf("a new user: role %q, metadata %s", me.Role, me.Metadata)
		}
		ctx := context.Background()
		_, err := h.App.Service.UpdateUser(ctx, apptest.Operator, me.ID, auth.UserInput{Role: apptest.Ptr("admin"), Metadata: json.RawMessage(`{"plan": "pro", "seats": 3}`)})
		if err != nil {
			t.Fatal(err)
		}
		me = h.Me(t, pair.AccessToken)
		if me.Role != "admin" || string(me.Metadata) != `{"plan":"pro","seats":3}` {
			t.Errorf("after the update: role %q, metadata %s", me.Role, me.Metadata)
		}
		next := h.Rotate(t, pair.RefreshToken)
		if role := apptest.Claim(t, next.AccessToken, "role"); role != "admin" {
			t.Errorf("after a refresh the role claim is %q, want admin", role)
		}
		for name, in := range map[string]auth.UserInput{
			"metadata over 4 KiB": {Metadata: json.RawMessage(`{"x":"` + strings.Repeat("a", 4<<10) + `"}`)},
			"metadata an array":   {Metadata: json.RawMessage(`[1,2]`)},
			"metadata not JSON":   {Metadata: json.RawMessage(`{"x":`)},
			"role with spaces":    {Role: apptest.Ptr("super admin")},
		} {
			_, err := h.App.Service.UpdateUser(ctx, apptest.Operator, me.ID, in)
			if auth.ErrorCode(err) != auth.CodeValidation {
				t.Errorf("%s: %v, want a validation error", name, err)
			}
		}
		if _, err := h.App.Service.UpdateUser(ctx, auth.Admin{Scope: "other-tenant"}, me.ID, auth.UserInput{Role: apptest.Ptr("x")}); auth.ErrorCode(err) != auth.CodeNotFound {
			t.Errorf("an update scoped to another tenant: %v, want not found", err)
		}
	})
}

func TestDefaultTenantSettingsAreCheckedAtStartNamingTheirKey(t *testing.T) {
	smtp := mailtest.NewServer(t)
	cfg := apptest.Config(storetest.SQLiteURL(t), smtp)
	cfg.DefaultTenant.Locale = "not a locale"
	cfg.DefaultTenant.MailFrom = "nobody"
	cfg.DefaultTenant.AllowedOrigins = []string{"https://ok.test", "ftp://nope.test"}
	_, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), time.Now)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("app.New = %v, want the joined problems of the default tenant's settings", err)
	}
	var keys []string
	for _, e := range joined.Unwrap() {
		var ke *config.KeyError
		if errors.As(e, &ke) {
			keys = append(keys, ke.Key)
		}
	}
	want := []string{"default_tenant.mail_from", "default_tenant.locale", "default_tenant.allowed_origins"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys named by the start-up error %v (-want +got):\n%s", err, diff)
	}
}
