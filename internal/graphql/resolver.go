package graphql

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/httpapi"
)

// request is what the HTTP handler knows of a request that resolvers need.
type request struct {
	accessToken string // from Authorization / Authentication, "" when none
	meta        auth.Meta
	// allowIP takes a token of the per-IP bucket; logins spend one, as on REST.
	allowIP func() (bool, time.Duration)
	// logins counts the password checks of this HTTP request, across aliases and batched operations.
	logins atomic.Int32
}

type requestKey struct{}

func withRequest(ctx context.Context, r *request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

func requestOf(ctx context.Context) *request {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return r
	}
	return &request{allowIP: func() (bool, time.Duration) { return true, 0 }}
}

// errTooManyLogins refuses a second password check in one HTTP request: aliases or a batch must not
// multiply the hashing work a single request can demand.
var errTooManyLogins = errors.New("graphql: one login per request")

// rateLimited is the per-IP bucket refusing a login.
type rateLimited struct{ retryAfter time.Duration }

func (e *rateLimited) Error() string { return "graphql: too many requests from this address" }

// resolver is the root of the resolvers: each is a thin call into auth, its answer shaped by the
// mutation's own set (saleor.go or jwt.go).
type resolver struct {
	svc *auth.Service
}

func (r *resolver) Mutation() MutationResolver         { return mutation{r} }
func (r *resolver) Query() QueryResolver               { return query{r} }
func (r *resolver) CreateToken() CreateTokenResolver   { return createToken{r} }
func (r *resolver) RefreshToken() RefreshTokenResolver { return refreshToken{r} }
func (r *resolver) VerifyToken() VerifyTokenResolver   { return verifyToken{r} }

type mutation struct{ *resolver }
type query struct{ *resolver }
type createToken struct{ *resolver }
type refreshToken struct{ *resolver }
type verifyToken struct{ *resolver }

// signIn is the login of both sets: one password check per request, the per-IP bucket, then auth's
// two-calls-of-one-operation sign-in.
func (r *resolver) signIn(ctx context.Context, email, password string, otp, tenantID *string) (auth.TokenPair, error) {
	req := requestOf(ctx)
	if req.logins.Add(1) > 1 {
		return auth.TokenPair{}, errTooManyLogins
	}
	if ok, wait := req.allowIP(); !ok {
		return auth.TokenPair{}, &rateLimited{retryAfter: wait}
	}
	tenant, err := httpapi.RequestTenant(ctx, deref(tenantID))
	if errors.Is(err, httpapi.ErrTenantMismatch) {
		var v auth.Validation
		v.Add("tenantId", "names another tenant than the URL ("+httpapi.PathPrefix(ctx)+"/graphql)")
		return auth.TokenPair{}, v.Err()
	}
	return r.svc.SignIn(ctx, auth.SignInInput{Email: email, Password: password, OTP: deref(otp), TenantID: tenant, Meta: req.meta})
}

// refreshArg is the refresh token of tokenRefresh / refreshToken: in refreshToken, or in token as
// the seeds' older clients send it.
func refreshArg(refreshToken, token *string) (string, error) {
	if t := deref(refreshToken); t != "" {
		return t, nil
	}
	if t := deref(token); t != "" {
		return t, nil
	}
	var v auth.Validation
	v.Add("refreshToken", "is required")
	return "", v.Err()
}

// verify checks an access token and answers its payload.
func (r *resolver) verify(ctx context.Context, raw string) (map[string]any, error) {
	if _, err := r.svc.Verify(ctx, raw); err != nil {
		return nil, err
	}
	return payload(raw), nil
}

// payload is an access token's claims as a client decoding it would read them, plus the names the
// seeds' clients read: username (the email) and origIat (the session's start). The token is one
// Latch signed or verified just now, so every claim the issuer writes appears without a list here.
func payload(access string) map[string]any {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil {
		return nil
	}
	claims["username"] = claims["email"]
	if start, ok := claims["auth_time"]; ok {
		claims["origIat"] = start
	} else {
		claims["origIat"] = claims["iat"]
	}
	return claims
}

// subject is the user id of an access token Latch just issued.
func subject(access string) string {
	s, _ := payload(access)["sub"].(string)
	return s
}

// user loads the account a payload type names, for the queries that ask for it.
func (r *resolver) user(ctx context.Context, id string) (*User, error) {
	if id == "" {
		return nil, nil
	}
	u, err := r.svc.User(ctx, auth.Admin{}, id) // any tenant's: the id comes from a token Latch issued
	if err != nil {
		if auth.ErrorCode(err) != "" {
			return nil, nil // gone since the token was issued: no user to show
		}
		return nil, err
	}
	return userOf(u), nil
}

func userOf(u auth.User) *User {
	if u.Role == "" {
		u.Role = auth.DefaultRole
	}
	return &User{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil, IsActive: u.Active(),
		TenantID: u.TenantID, Role: u.Role}
}

func (q query) Me(ctx context.Context) (*User, error) {
	raw := requestOf(ctx).accessToken
	if raw == "" {
		return nil, nil
	}
	p, err := q.svc.Authenticate(ctx, raw, false)
	if err != nil {
		return nil, nil
	}
	u, err := q.svc.Me(ctx, p)
	if err != nil {
		if auth.ErrorCode(err) != "" {
			return nil, nil // gone or disabled since the token was issued
		}
		return nil, err
	}
	return userOf(u), nil
}

func (c createToken) User(ctx context.Context, obj *CreateToken) (*User, error) {
	return c.user(ctx, obj.userID)
}

func (c refreshToken) User(ctx context.Context, obj *RefreshToken) (*User, error) {
	return c.user(ctx, obj.userID)
}

func (c verifyToken) User(ctx context.Context, obj *VerifyToken) (*User, error) {
	return c.user(ctx, obj.userID)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

// withAttempts is a wrong-code message that says how many tries the code has left, where it says.
func withAttempts(ae *auth.Error) string {
	if ae.AttemptsRemaining == nil || *ae.AttemptsRemaining == 0 {
		return ae.Detail
	}
	return fmt.Sprintf("%s %d tries left.", ae.Detail, *ae.AttemptsRemaining)
}

// seconds rounds a wait up to whole seconds, never zero.
func seconds(d time.Duration) int64 {
	return int64(max((d+time.Second-1)/time.Second, 1))
}
