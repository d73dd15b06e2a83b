package app_test

import (
	"context"
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
)

// accountError is one entry of a Saleor payload's errors list.
type accountError struct {
	Field   *string `json:"field"`
	Message string  `json:"message"`
	Code    string  `json:"code"`
}

// codes lists the codes (and fields) of a Saleor errors list, for comparison.
func codes(errs []accountError) []string {
	out := []string{}
	for _, e := range errs {
		f := ""
		if e.Field != nil {
			f = *e.Field
		}
		out = append(out, e.Code+"@"+f)
	}
	return out
}

type gqlUser struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
	IsActive      bool   `json:"isActive"`
	TenantID      string `json:"tenantId"`
	Role          string `json:"role"`
}

type createToken struct {
	Token        *string        `json:"token"`
	RefreshToken *string        `json:"refreshToken"`
	User         *gqlUser       `json:"user"`
	Errors       []accountError `json:"errors"`
}

const saleorCreate = `mutation($email: String!, $password: String!, $otp: String) {
  tokenCreate(email: $email, password: $password, otp: $otp) {
    token refreshToken csrfToken user { id email isActive } errors { field message code }
  }
}`

const saleorRefresh = `mutation($refreshToken: String, $token: String) {
  tokenRefresh(refreshToken: $refreshToken, token: $token) {
    token refreshToken payload user { id email } errors { field message code }
  }
}`

const saleorVerify = `mutation($token: String!) {
  tokenVerify(token: $token) { isValid payload user { id email } errors { field message code } }
}`

const jwtAuth = `mutation($username: String, $email: String, $password: String!, $otp: String) {
  tokenAuth(username: $username, email: $email, password: $password, otp: $otp) { token refreshToken payload refreshExpiresIn }
}`

const jwtRefresh = `mutation($refreshToken: String, $token: String) {
  refreshToken(refreshToken: $refreshToken, token: $token) { token refreshToken payload refreshExpiresIn }
}`

const meQuery = `{ me { id email emailVerified isActive tenantId role } }`

// saleorLogin logs in through tokenCreate in two calls, the second with the emailed code.
func saleorLogin(t *testing.T, h *apptest.Instance, email string) createToken {
	t.Helper()
	h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
	vars := map[string]any{"email": email, "password": apptest.Password}
	var first createToken
	_, res := h.GraphQL(t, saleorCreate, vars)
	res.Field(t, "tokenCreate", &first)
	if diff := cmp.Diff([]string{"OTP_REQUIRED@otp"}, codes(first.Errors)); diff != "" || first.Token != nil {
		t.Fatalf("first tokenCreate = %+v, want OTP_REQUIRED and no token (-want +got codes):\n%s", first, diff)
	}
	vars["otp"] = h.CodeFor(t, email)
	var second createToken
	_, res = h.GraphQL(t, saleorCreate, vars)
	res.Field(t, "tokenCreate", &second)
	if second.Token == nil || second.RefreshToken == nil || len(second.Errors) != 0 {
		t.Fatalf("second tokenCreate = %+v, want tokens and errors []", second)
	}
	return second
}

// TestGraphQLSaleorSet drives every Saleor mutation and me through the two-call login.
func TestGraphQLSaleorSet(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		signup := h.Signup(t, "saleor@example.test", apptest.Password)
		me := h.Me(t, signup.AccessToken)
		opened := h.Clock.Now().Unix()

		h.Clock.Advance(time.Minute)
		login := saleorLogin(t, h, "Saleor@Example.test")
		if login.User == nil || *login.User != (gqlUser{ID: me.ID, Email: "saleor@example.test", IsActive: true}) {
			t.Errorf("tokenCreate user = %+v", login.User)
		}
		loginStart := h.Clock.Now().Unix()

		var verified struct {
			IsValid bool           `json:"isValid"`
			Payload map[string]any `json:"payload"`
			User    *gqlUser       `json:"user"`
			Errors  []accountError `json:"errors"`
		}
		_, res := h.GraphQL(t, saleorVerify, map[string]any{"token": *login.Token})
		res.Field(t, "tokenVerify", &verified)
		if !verified.IsValid || len(verified.Errors) != 0 || verified.User == nil || verified.User.ID != me.ID {
			t.Fatalf("tokenVerify = %+v", verified)
		}
		_, claims := apptest.DecodeJWT(t, *login.Token)
		for k, v := range claims {
			if fmt.Sprint(verified.Payload[k]) != fmt.Sprint(v) {
				t.Errorf("payload[%s] = %v, want the claim %v", k, verified.Payload[k], v)
			}
		}
		wantExtra := map[string]any{"email": "saleor@example.test", "username": "saleor@example.test", "origIat": float64(loginStart)}
		for k, v := range wantExtra {
			if verified.Payload[k] != v {
				t.Errorf("payload[%s] = %v, want %v", k, verified.Payload[k], v)
			}
		}
		if verified.Payload["origIat"] == float64(opened) {
			t.Errorf("origIat is the signup session's start, not this login's")
		}

		for _, header := range [][]string{apptest.JWT(*login.Token), apptest.Bearer(*login.Token), {"Authentication", "JWT " + *login.Token}} {
			var got *gqlUser
			_, res := h.GraphQL(t, meQuery, nil, header...)
			res.Field(t, "me", &got)
			want := &gqlUser{ID: me.ID, Email: "saleor@example.test", EmailVerified: true, IsActive: true, TenantID: auth.DefaultTenantID, Role: "user"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("me with %s (-want +got):\n%s", header[0], diff)
			}
		}
		var anonymous *gqlUser
		_, res = h.GraphQL(t, meQuery, nil)
		if res.Field(t, "me", &anonymous); anonymous != nil || len(res.Errors) != 0 {
			t.Errorf("me without a token = %+v, errors %+v; want null and no error", anonymous, res.Errors)
		}

		var refreshed struct {
			Token        *string        `json:"token"`
			RefreshToken *string        `json:"refreshToken"`
			Payload      map[string]any `json:"payload"`
			User         *gqlUser       `json:"user"`
			Errors       []accountError `json:"errors"`
		}
		h.Clock.Advance(time.Minute)
		_, res = h.GraphQL(t, saleorRefresh, map[string]any{"refreshToken": *login.RefreshToken})
		res.Field(t, "tokenRefresh", &refreshed)
		if refreshed.Token == nil || refreshed.RefreshToken == nil || *refreshed.RefreshToken == *login.RefreshToken ||
			len(refreshed.Errors) != 0 || refreshed.User == nil || refreshed.User.ID != me.ID {
			t.Fatalf("tokenRefresh = %+v", refreshed)
		}
		if refreshed.Payload["origIat"] != float64(loginStart) {
			t.Errorf("after a refresh origIat = %v, want the session start %d", refreshed.Payload["origIat"], loginStart)
		}
		// Seed 000's spelling: the refresh token in token.
		_, res = h.GraphQL(t, saleorRefresh, map[string]any{"token": *refreshed.RefreshToken})
		res.Field(t, "tokenRefresh", &refreshed)
		if refreshed.Token == nil || len(refreshed.Errors) != 0 {
			t.Fatalf("tokenRefresh(token:) = %+v", refreshed)
		}

		var deactivated struct {
			Errors []accountError `json:"errors"`
		}
		_, res = h.GraphQL(t, `mutation { tokensDeactivateAll { errors { field message code } } }`, nil, apptest.JWT(*refreshed.Token)...)
		res.Field(t, "tokensDeactivateAll", &deactivated)
		if deactivated.Errors == nil || len(deactivated.Errors) != 0 {
			t.Fatalf("tokensDeactivateAll = %+v, want errors []", deactivated)
		}
		// Every session of the user ended, the REST signup's too.
		apptest.WantProblem(t, h.Refresh(t, *refreshed.RefreshToken), http.StatusUnauthorized, "session_revoked")
		apptest.WantProblem(t, h.Refresh(t, signup.RefreshToken), http.StatusUnauthorized, "session_revoked")
		_, res = h.GraphQL(t, `mutation { tokensDeactivateAll { errors { field message code } } }`, nil)
		res.Field(t, "tokensDeactivateAll", &deactivated)
		if diff := cmp.Diff([]string{"JWT_MISSING_TOKEN@token"}, codes(deactivated.Errors)); diff != "" {
			t.Errorf("tokensDeactivateAll without a token (-want +got):\n%s", diff)
		}
	})
}

type jwtTokens struct {
	Token            string         `json:"token"`
	RefreshToken     string         `json:"refreshToken"`
	Payload          map[string]any `json:"payload"`
	RefreshExpiresIn int64          `json:"refreshExpiresIn"`
}

// TestGraphQLJWTSet drives every graphql-jwt mutation through the two-call login.
func TestGraphQLJWTSet(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.Signup(t, "jwt@example.test", apptest.Password)
		h.Clock.Advance(time.Minute)

		vars := map[string]any{"username": "jwt@example.test", "password": apptest.Password}
		_, res := h.GraphQL(t, jwtAuth, vars)
		apptest.WantGraphQLError(t, res, "OTP_REQUIRED")
		vars["otp"] = h.CodeFor(t, "jwt@example.test")
		var login jwtTokens
		_, res = h.GraphQL(t, jwtAuth, vars)
		res.Field(t, "tokenAuth", &login)
		if login.Token == "" || login.RefreshToken == "" || len(res.Errors) != 0 {
			t.Fatalf("tokenAuth = %+v, errors %+v", login, res.Errors)
		}
		if want := h.Clock.Now().Add(h.Config.Tokens.RefreshIdleTTL).Unix(); login.RefreshExpiresIn != want {
			t.Errorf("refreshExpiresIn = %d, want the Unix time %d", login.RefreshExpiresIn, want)
		}
		if login.Payload["username"] != "jwt@example.test" || login.Payload["origIat"] != float64(h.Clock.Now().Unix()) || login.Payload["exp"] == nil {
			t.Errorf("tokenAuth payload = %v", login.Payload)
		}

		var verified struct {
			Payload map[string]any `json:"payload"`
		}
		_, res = h.GraphQL(t, `mutation($token: String!) { verifyToken(token: $token) { payload } }`, map[string]any{"token": login.Token})
		res.Field(t, "verifyToken", &verified)
		if verified.Payload["sub"] == nil || verified.Payload["sub"] != login.Payload["sub"] {
			t.Errorf("verifyToken payload = %v", verified.Payload)
		}

		h.Clock.Advance(time.Minute)
		var refreshed jwtTokens
		_, res = h.GraphQL(t, jwtRefresh, map[string]any{"token": login.RefreshToken}) // seed 002's spelling
		res.Field(t, "refreshToken", &refreshed)
		if refreshed.Token == "" || refreshed.RefreshToken == login.RefreshToken || len(res.Errors) != 0 {
			t.Fatalf("refreshToken = %+v, errors %+v", refreshed, res.Errors)
		}
		if want := h.Clock.Now().Add(h.Config.Tokens.RefreshIdleTTL).Unix(); refreshed.RefreshExpiresIn != want {
			t.Errorf("refreshExpiresIn after a refresh = %d, want %d", refreshed.RefreshExpiresIn, want)
		}

		var revoked struct {
			Revoked int64 `json:"revoked"`
		}
		_, res = h.GraphQL(t, `mutation($rt: String!) { revokeToken(refreshToken: $rt) { revoked } }`, map[string]any{"rt": refreshed.RefreshToken})
		res.Field(t, "revokeToken", &revoked)
		if revoked.Revoked != h.Clock.Now().Unix() {
			t.Errorf("revoked = %d, want now %d", revoked.Revoked, h.Clock.Now().Unix())
		}
		apptest.WantProblem(t, h.Refresh(t, refreshed.RefreshToken), http.StatusUnauthorized, "session_revoked")
		_, res = h.GraphQL(t, jwtRefresh, map[string]any{"refreshToken": refreshed.RefreshToken})
		apptest.WantGraphQLError(t, res, "SESSION_REVOKED")
		_, res = h.GraphQL(t, `mutation { revokeToken(refreshToken: "lrt_nope") { revoked } }`, nil)
		if e := apptest.WantGraphQLError(t, res, "INVALID_REFRESH_TOKEN"); e.Message != "Invalid refresh token" {
			t.Errorf("message = %q", e.Message)
		}
	})
}

// TestGraphQLErrorStyles: the same failures answered in each set's shape: Saleor's errors list with
// HTTP 200, graphql-jwt's top-level errors with its own messages.
func TestGraphQLErrorStyles(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		pair := h.Signup(t, "styles@example.test", apptest.Password)
		userID := h.Me(t, pair.AccessToken).ID
		other := apptest.New(t, store.SQLite).Signup(t, "elsewhere@example.test", apptest.Password) // signed by another key

		saleor := func(query string, vars map[string]any, field string) []string {
			t.Helper()
			r, res := h.GraphQL(t, query, vars)
			apptest.WantStatus(t, r, http.StatusOK)
			var p struct {
				Errors []accountError `json:"errors"`
			}
			res.Field(t, field, &p)
			return codes(p.Errors)
		}
		jwt := func(query string, vars map[string]any) apptest.GraphQLError {
			t.Helper()
			r, res := h.GraphQL(t, query, vars)
			apptest.WantStatus(t, r, http.StatusOK)
			if len(res.Errors) != 1 {
				t.Fatalf("errors = %+v, want one", res.Errors)
			}
			return res.Errors[0]
		}
		verifyJWT := `mutation($token: String!) { verifyToken(token: $token) { payload } }`
		type want struct{ saleor, message, code string }
		check := func(name string, gotSaleor []string, gotJWT apptest.GraphQLError, w want) {
			t.Helper()
			if diff := cmp.Diff([]string{w.saleor}, gotSaleor); diff != "" {
				t.Errorf("%s: Saleor codes (-want +got):\n%s", name, diff)
			}
			if gotJWT.Message != w.message || gotJWT.Code() != w.code {
				t.Errorf("%s: graphql-jwt error = %q %s, want %q %s", name, gotJWT.Message, gotJWT.Code(), w.message, w.code)
			}
		}

		wrong := map[string]any{"email": "styles@example.test", "username": "styles@example.test", "password": "not the password"}
		check("wrong password", saleor(saleorCreate, wrong, "tokenCreate"), jwt(jwtAuth, wrong),
			want{"INVALID_CREDENTIALS@email", "Please enter valid credentials", "INVALID_CREDENTIALS"})
		check("garbage token", saleor(saleorVerify, map[string]any{"token": "garbage"}, "tokenVerify"), jwt(verifyJWT, map[string]any{"token": "garbage"}),
			want{"JWT_DECODE_ERROR@token", "Error decoding signature", "INVALID_TOKEN"})
		check("foreign token", saleor(saleorVerify, map[string]any{"token": other.AccessToken}, "tokenVerify"), jwt(verifyJWT, map[string]any{"token": other.AccessToken}),
			want{"JWT_INVALID_TOKEN@token", "Invalid token", "INVALID_TOKEN"})
		check("unknown refresh token", saleor(saleorRefresh, map[string]any{"refreshToken": "lrt_unknown"}, "tokenRefresh"),
			jwt(jwtRefresh, map[string]any{"refreshToken": "lrt_unknown"}), want{"JWT_INVALID_TOKEN@refreshToken", "Invalid refresh token", "INVALID_REFRESH_TOKEN"})
		missing := jwt(jwtRefresh, nil)
		check("no refresh token", saleor(saleorRefresh, nil, "tokenRefresh"), missing,
			want{"JWT_MISSING_TOKEN@refreshToken", missing.Message, "VALIDATION_FAILED"})
		check("invalid email", saleor(saleorCreate, map[string]any{"email": "not an email", "password": "x"}, "tokenCreate"),
			jwt(jwtAuth, map[string]any{"email": "not an email", "password": "x"}), want{"INVALID@email", missing.Message, "VALIDATION_FAILED"})
		check("empty email", saleor(saleorCreate, map[string]any{"email": "", "password": "x"}, "tokenCreate"),
			jwt(jwtAuth, map[string]any{"password": "x"}), want{"REQUIRED@email", missing.Message, "VALIDATION_FAILED"})

		h.Clock.Advance(h.Config.Tokens.AccessTTL + time.Minute)
		check("expired access token", saleor(saleorVerify, map[string]any{"token": pair.AccessToken}, "tokenVerify"),
			jwt(verifyJWT, map[string]any{"token": pair.AccessToken}), want{"JWT_SIGNATURE_EXPIRED@token", "Signature has expired", "TOKEN_EXPIRED"})
		h.Clock.Advance(h.Config.Tokens.RefreshIdleTTL)
		check("expired session", saleor(saleorRefresh, map[string]any{"refreshToken": pair.RefreshToken}, "tokenRefresh"),
			jwt(jwtRefresh, map[string]any{"refreshToken": pair.RefreshToken}), want{"JWT_SIGNATURE_EXPIRED@refreshToken", "Refresh token is expired", "SESSION_EXPIRED"})

		// Wrong passwords past the free ones: the account waits, on either set.
		for range h.Config.RateLimit.FreeFailures - 1 { // two failed above; one more than the free ones
			saleor(saleorCreate, wrong, "tokenCreate")
		}
		throttled := jwt(jwtAuth, wrong)
		check("throttled", saleor(saleorCreate, wrong, "tokenCreate"), throttled, want{"LOGIN_ATTEMPT_DELAYED@", throttled.Message, "LOGIN_THROTTLED"})
		if throttled.Extensions["retryAfter"] == nil {
			t.Errorf("throttled graphql-jwt error has no retryAfter: %+v", throttled)
		}

		if err := h.App.Store.SetUserStatus(context.Background(), userID, auth.StatusDisabled, auth.Event{}); err != nil {
			t.Fatal(err)
		}
		h.Clock.Advance(time.Hour)
		right := map[string]any{"email": "styles@example.test", "username": "styles@example.test", "password": apptest.Password}
		disabled := jwt(jwtAuth, right)
		check("disabled", saleor(saleorCreate, right, "tokenCreate"), disabled, want{"INACTIVE@email", disabled.Message, "ACCOUNT_DISABLED"})
	})
}

// TestGraphQLRefreshFollowsTheRotationRules: grace and reuse through GraphQL are the REST rules, on
// the same session: a reuse through GraphQL ends the session for REST too.
func TestGraphQLRefreshFollowsTheRotationRules(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		first := h.Signup(t, "rotation@example.test", apptest.Password)
		second := h.Rotate(t, first.RefreshToken) // REST rotates

		var again jwtTokens
		_, res := h.GraphQL(t, jwtRefresh, map[string]any{"refreshToken": first.RefreshToken})
		res.Field(t, "refreshToken", &again) // within the grace: the same successor
		if again.RefreshToken != second.RefreshToken {
			t.Fatalf("replay within the grace through GraphQL gave %q, want REST's successor %q", again.RefreshToken, second.RefreshToken)
		}

		h.Clock.Advance(h.Config.Tokens.RefreshReuseGrace + time.Second)
		_, res = h.GraphQL(t, saleorRefresh, map[string]any{"refreshToken": first.RefreshToken})
		var reused struct {
			Errors []accountError `json:"errors"`
		}
		res.Field(t, "tokenRefresh", &reused)
		if diff := cmp.Diff([]string{"JWT_INVALID_TOKEN@refreshToken"}, codes(reused.Errors)); diff != "" {
			t.Fatalf("reuse through GraphQL (-want +got):\n%s", diff)
		}
		apptest.WantProblem(t, h.Refresh(t, second.RefreshToken), http.StatusUnauthorized, "session_revoked")
		if r := h.Get(t, "/v2/auth/sessions", apptest.Bearer(second.AccessToken)...); r.Status != http.StatusUnauthorized {
			t.Errorf("sessions after a reuse through GraphQL = %d, want 401", r.Status)
		}
	})
}

// TestGraphQLBadInput: no input makes the endpoint fail; every refusal is a GraphQL error with 200 or
// 400 (413 for an oversize body, 415 for another media type).
func TestGraphQLBadInput(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.Signup(t, "bad@example.test", apptest.Password)
		raw := func(contentType, body string) apptest.Raw {
			return apptest.Raw{ContentType: contentType, Body: strings.NewReader(body)}
		}
		cases := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"not JSON", raw("application/json", "{nope"), 400, "BAD_REQUEST"},
			{"a JSON string", raw("application/json", `"query"`), 400, "BAD_REQUEST"},
			{"empty body", raw("application/json", ""), 400, "BAD_REQUEST"},
			{"no query", map[string]any{"variables": map[string]any{}}, 400, "BAD_REQUEST"},
			{"query not a string", map[string]any{"query": 5}, 400, "BAD_REQUEST"},
			{"variables not an object", map[string]any{"query": meQuery, "variables": []int{1}}, 400, "BAD_REQUEST"},
			{"form body", raw("application/x-www-form-urlencoded", "query=x"), 415, "UNSUPPORTED_MEDIA_TYPE"},
			{"syntax error", map[string]any{"query": "{ me { id "}, 400, "GRAPHQL_PARSE_FAILED"},
			{"unknown field", map[string]any{"query": "{ me { password } }"}, 400, "GRAPHQL_VALIDATION_FAILED"},
			{"unknown operation", map[string]any{"query": meQuery, "operationName": "Other"}, 400, "GRAPHQL_VALIDATION_FAILED"},
			{"wrong variable type", map[string]any{"query": saleorVerify, "variables": map[string]any{"token": 5}}, 400, "GRAPHQL_VALIDATION_FAILED"},
			{"missing variable", map[string]any{"query": saleorVerify}, 400, "GRAPHQL_VALIDATION_FAILED"},
			{"too deep", map[string]any{"query": `{ __type(name: "User") {` + strings.Repeat(" ofType {", 15) + " name" + strings.Repeat(" }", 16) + " }"}, 400, "DEPTH_LIMIT_EXCEEDED"},
			{"introspection fan-out", map[string]any{"query": "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"}, 400, "GRAPHQL_VALIDATION_FAILED"},
			{"too complex", map[string]any{"query": "{" + strings.Repeat(" me { id email }", 100) + " }"}, 400, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"fragment fan-out", map[string]any{"query": fragmentBomb(20)}, 400, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"too many tokens", map[string]any{"query": "{ me {" + strings.Repeat(" id", 6000) + " } }"}, 400, "GRAPHQL_PARSE_FAILED"},
			{"empty batch", raw("application/json", "[]"), 400, "BAD_REQUEST"},
			{"batch over the limit", raw("application/json", "["+strings.Repeat(`{"query":"{ me { id } }"},`, 10)+`{"query":"{ me { id } }"}]`), 400, "BATCH_LIMIT_EXCEEDED"},
			{"over 64 KiB", map[string]any{"query": "# " + strings.Repeat("x", 64<<10)}, 413, "PAYLOAD_TOO_LARGE"},
			{"over 64 KiB, chunked", apptest.Raw{ContentType: "application/json", Body: unsized{strings.NewReader(`{"query":"# ` + strings.Repeat("x", 64<<10) + `"}`)}}, 413, "PAYLOAD_TOO_LARGE"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, res := h.GraphQLRaw(t, tc.body)
				apptest.WantStatus(t, r, tc.status)
				apptest.WantGraphQLError(t, res, tc.code)
			})
		}

		t.Run("aliases multiplying a login", func(t *testing.T) {
			var q strings.Builder
			q.WriteString("mutation {")
			for i := range 60 {
				fmt.Fprintf(&q, ` a%d: tokenCreate(email: "bad@example.test", password: "wrong password %d") { errors { code } }`, i, i)
			}
			q.WriteString(" }")
			r, res := h.GraphQL(t, q.String(), nil)
			apptest.WantStatus(t, r, http.StatusOK)
			var first struct {
				Errors []accountError `json:"errors"`
			}
			res.Field(t, "a0", &first)
			if diff := cmp.Diff([]string{"INVALID_CREDENTIALS@"}, codes(first.Errors)); diff != "" { // field not asked for
				t.Errorf("the first alias (-want +got):\n%s", diff)
			}
			refused := 0
			for _, e := range res.Errors {
				if e.Code() == "TOO_MANY_LOGINS" {
					refused++
				}
			}
			if refused != 59 {
				t.Errorf("%d aliases refused as a second login, want 59: %+v", refused, res.Errors)
			}
			if n := h.EventCount(t, "login_failed"); n != 1 {
				t.Errorf("%d password checks failed, want 1: the aliases ran more than one", n)
			}
		})

		t.Run("batched logins", func(t *testing.T) {
			ops := make([]map[string]any, 3)
			for i := range ops {
				ops[i] = map[string]any{"query": jwtAuth, "variables": map[string]any{"email": "bad@example.test", "password": "wrong"}}
			}
			r := h.Post(t, "/graphql", ops)
			apptest.WantStatus(t, r, http.StatusOK)
			var results []apptest.GraphQLResult
			r.JSON(t, &results)
			var got []string
			for _, res := range results {
				for _, e := range res.Errors {
					got = append(got, e.Code())
				}
			}
			if diff := cmp.Diff([]string{"INVALID_CREDENTIALS", "TOO_MANY_LOGINS", "TOO_MANY_LOGINS"}, got); diff != "" {
				t.Errorf("batched logins (-want +got):\n%s", diff)
			}
		})

		t.Run("a batch mixes answers", func(t *testing.T) {
			r := h.Post(t, "/graphql", []map[string]any{{"query": meQuery}, {"query": "{ nope }"}})
			apptest.WantStatus(t, r, http.StatusOK)
			var results []apptest.GraphQLResult
			r.JSON(t, &results)
			if len(results) != 2 || len(results[0].Errors) != 0 || len(results[1].Errors) != 1 {
				t.Errorf("batch answers = %+v", results)
			}
		})
	})
}

// fragmentBomb spreads each fragment twice into the one before it: n levels select 2^n fields.
func fragmentBomb(n int) string {
	var b strings.Builder
	b.WriteString("query { me { ...F0 } }\n")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on User { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on User { id email }\n", n)
	return b.String()
}

// TestGraphQLIntrospectionAndSwitches: the standard introspection query fits the limits; the
// configuration switches introspection, the explorer and the whole surface off.
func TestGraphQLIntrospectionAndSwitches(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	r, res := h.GraphQL(t, introspectionQuery, nil)
	apptest.WantStatus(t, r, http.StatusOK)
	var schema struct {
		QueryType struct{ Name string } `json:"queryType"`
		Types     []struct{ Name string }
	}
	res.Field(t, "__schema", &schema)
	if schema.QueryType.Name != "Query" || len(schema.Types) < 10 || len(res.Errors) != 0 {
		t.Errorf("introspection = %+v, errors %+v", schema, res.Errors)
	}

	page := h.Get(t, "/graphql")
	apptest.WantStatus(t, page, http.StatusOK)
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "unsafe") {
		t.Errorf("explorer CSP = %q: want scripts from this origin only", csp)
	}
	for _, asset := range []string{"/graphql/explorer.js", "/graphql/explorer.css"} {
		apptest.WantStatus(t, h.Get(t, asset), http.StatusOK)
	}
	if strings.Contains(string(page.Body), "//") && strings.Contains(string(page.Body), "http") {
		t.Errorf("the explorer page names another host:\n%s", page.Body)
	}

	off := apptest.New(t, store.SQLite, func(c *config.Config) { c.GraphQL.Introspection, c.GraphQL.Explorer = false, false })
	_, res = off.GraphQL(t, `{ __schema { queryType { name } } }`, nil)
	if len(res.Errors) == 0 {
		t.Errorf("introspection with graphql.introspection false answered %+v", res)
	}
	_, res = off.GraphQL(t, `{ __typename me { id } }`, nil)
	if len(res.Errors) != 0 {
		t.Errorf("an ordinary query with introspection off: %+v", res.Errors)
	}
	apptest.WantGraphQLError(t, func() apptest.GraphQLResult {
		r := off.Get(t, "/graphql")
		apptest.WantStatus(t, r, http.StatusMethodNotAllowed)
		var g apptest.GraphQLResult
		r.JSON(t, &g)
		return g
	}(), "METHOD_NOT_ALLOWED")

	disabled := apptest.New(t, store.SQLite, func(c *config.Config) { c.GraphQL.Enabled = false })
	apptest.WantProblem(t, disabled.Post(t, "/graphql", map[string]any{"query": meQuery}), http.StatusNotFound, "not_found")
}

// introspectionQuery is the query GraphQL tools send to learn a schema (graphql-js's, with
// descriptions and deprecations).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// TestAccessTokenHeadersOnEverySurface: the three spellings of the access-token header work on REST
// and on GraphQL alike.
func TestAccessTokenHeadersOnEverySurface(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	pair := h.Signup(t, "headers@example.test", apptest.Password)
	for _, header := range [][]string{
		{"Authorization", "Bearer " + pair.AccessToken},
		{"Authorization", "JWT " + pair.AccessToken},
		{"Authentication", "JWT " + pair.AccessToken},
	} {
		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", header...), http.StatusOK)
		var me *gqlUser
		_, res := h.GraphQL(t, meQuery, nil, header...)
		if res.Field(t, "me", &me); me == nil || me.Email != "headers@example.test" {
			t.Errorf("GraphQL me with %s %q = %+v", header[0], strings.Fields(header[1])[0], me)
		}
	}
}

// TestGraphQLTenants: under /t/{tenant}/graphql (or with tenantId) the tenant's rules apply: with its
// second step off both sets log in with one call, tokens carry its issuer and tid, and a tenant that
// does not rotate hands back the same refresh token, as the Saleor SDK needs.
func TestGraphQLTenants(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		url := h.URL + "/t/shop/graphql"
		h.CreateTenant(t, "shop", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff),
			RefreshRotation: apptest.Ptr(false), Issuer: apptest.Ptr(url)})
		const email = "buyer@example.test"
		h.CreateAccount(t, "shop", email, apptest.Password)
		vars := map[string]any{"email": email, "username": email, "password": apptest.Password}

		// One call on the tenant's path.
		var login createToken
		_, res := h.GraphQLAt(t, "/t/shop/graphql", saleorCreate, vars)
		res.Field(t, "tokenCreate", &login)
		if login.Token == nil || login.RefreshToken == nil || len(login.Errors) != 0 {
			t.Fatalf("one-call tokenCreate = %+v, errors %+v", login, res.Errors)
		}
		_, claims := apptest.DecodeJWT(t, *login.Token)
		if claims["iss"] != url || claims["tid"] != "shop" {
			t.Errorf("claims %v: want iss %s and tid shop", claims, url)
		}
		var me *gqlUser
		_, res = h.GraphQLAt(t, "/t/shop/graphql", meQuery, nil, apptest.JWT(*login.Token)...)
		if res.Field(t, "me", &me); me == nil || me.TenantID != "shop" || me.Email != email {
			t.Errorf("me = %+v", me)
		}

		// One call with tenantId on the shared path, the graphql-jwt way.
		var jwtLogin jwtTokens
		_, res = h.GraphQL(t, `mutation($username: String, $password: String!, $tenant: String) {
			tokenAuth(username: $username, password: $password, tenantId: $tenant) { token refreshToken payload refreshExpiresIn }
		}`, map[string]any{"username": email, "password": apptest.Password, "tenant": "shop"})
		res.Field(t, "tokenAuth", &jwtLogin)
		if jwtLogin.Token == "" || jwtLogin.Payload["tid"] != "shop" {
			t.Fatalf("one-call tokenAuth = %+v, errors %+v", jwtLogin, res.Errors)
		}

		// No rotation: every refresh answers the same refresh token, and it keeps working.
		for range 2 {
			h.Clock.Advance(h.Config.Tokens.RefreshReuseGrace + time.Minute)
			var refreshed struct {
				Token        *string        `json:"token"`
				RefreshToken *string        `json:"refreshToken"`
				Errors       []accountError `json:"errors"`
			}
			_, res = h.GraphQLAt(t, "/t/shop/graphql", saleorRefresh, map[string]any{"refreshToken": *login.RefreshToken})
			res.Field(t, "tokenRefresh", &refreshed)
			if refreshed.Token == nil || refreshed.RefreshToken == nil || *refreshed.RefreshToken != *login.RefreshToken {
				t.Fatalf("tokenRefresh on a tenant without rotation = %+v", refreshed)
			}
		}

		// A tenantId that contradicts the path is bad input, in each set's shape.
		mismatch := map[string]any{"email": email, "username": email, "password": apptest.Password, "tenant": "other"}
		var refused createToken
		_, res = h.GraphQLAt(t, "/t/shop/graphql", `mutation($email: String!, $password: String!, $tenant: String) {
			tokenCreate(email: $email, password: $password, tenantId: $tenant) { token errors { field message code } }
		}`, mismatch)
		res.Field(t, "tokenCreate", &refused)
		if diff := cmp.Diff([]string{"INVALID@tenantId"}, codes(refused.Errors)); diff != "" {
			t.Errorf("tenantId against the path (-want +got):\n%s", diff)
		}
		_, res = h.GraphQLAt(t, "/t/shop/graphql", `mutation($username: String, $password: String!, $tenant: String) {
			tokenAuth(username: $username, password: $password, tenantId: $tenant) { token }
		}`, mismatch)
		apptest.WantGraphQLError(t, res, "VALIDATION_FAILED")

		// The default tenant keeps its second step; an unknown tenant is refused like bad input.
		_, res = h.GraphQL(t, jwtAuth, map[string]any{"username": email, "password": apptest.Password})
		apptest.WantGraphQLError(t, res, "INVALID_CREDENTIALS")
		_, res = h.GraphQLAt(t, "/t/nowhere/graphql", saleorCreate, vars)
		var unknown createToken
		if res.Field(t, "tokenCreate", &unknown); unknown.Token != nil || len(unknown.Errors) == 0 {
			t.Errorf("login to an unknown tenant = %+v", unknown)
		}

		apptest.WantStatus(t, h.Get(t, "/t/shop/graphql"), http.StatusOK) // the explorer, for the tenant's URL
	})
}
