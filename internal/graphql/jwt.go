package graphql

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/token"
)

// The django-graphql-jwt set answers failures as top-level GraphQL errors carrying graphql-jwt's own
// messages where it has one, and extensions.code: Latch's catalogue code in upper case.

func (m mutation) TokenAuth(ctx context.Context, email, username *string, password string, otp, tenantID *string) (*ObtainJSONWebToken, error) {
	login := deref(email)
	if login == "" {
		login = deref(username)
	}
	pair, err := m.signIn(ctx, login, password, otp, tenantID)
	if err != nil {
		return nil, jwtError(err)
	}
	return &ObtainJSONWebToken{Payload: payload(pair.AccessToken), RefreshExpiresIn: pair.RefreshExpiresAt.Unix(),
		Token: pair.AccessToken, RefreshToken: pair.RefreshToken}, nil
}

func (m mutation) VerifyToken(ctx context.Context, tok string) (*Verify, error) {
	claims, err := m.verify(ctx, tok)
	if err != nil {
		return nil, jwtError(err)
	}
	return &Verify{Payload: claims}, nil
}

func (m mutation) RefreshToken(ctx context.Context, refreshToken, tok *string) (*Refresh, error) {
	raw, err := refreshArg(refreshToken, tok)
	if err != nil {
		return nil, jwtError(err)
	}
	pair, err := m.svc.Refresh(ctx, raw, requestOf(ctx).meta)
	if err != nil {
		return nil, jwtError(err)
	}
	return &Refresh{Payload: payload(pair.AccessToken), RefreshExpiresIn: pair.RefreshExpiresAt.Unix(),
		Token: pair.AccessToken, RefreshToken: pair.RefreshToken}, nil
}

func (m mutation) RevokeToken(ctx context.Context, refreshToken string) (*Revoke, error) {
	if err := m.svc.Logout(ctx, auth.LogoutInput{RefreshToken: refreshToken, Meta: requestOf(ctx).meta}); err != nil {
		return nil, jwtError(err)
	}
	return &Revoke{Revoked: m.svc.Now().Unix()}, nil
}

// jwtMessages are graphql-jwt's own words for the failures it has words for.
var jwtMessages = map[string]string{
	auth.CodeInvalidCredentials: "Please enter valid credentials",
	auth.CodeTokenExpired:       "Signature has expired",
	auth.CodeInvalidToken:       "Invalid token",
	auth.CodeSessionExpired:     "Refresh token is expired",
	auth.CodeInvalidRefresh:     "Invalid refresh token",
}

// jwtError is the one mapping from the service's errors to graphql-jwt's top-level errors. What no
// client input caused is returned as is, for the error presenter to log and hide.
func jwtError(err error) error {
	var limited *rateLimited
	if errors.As(err, &limited) {
		return jwtGQLError("Too many requests from this address; slow down.", "RATE_LIMITED", limited.retryAfter)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return err
	}
	msg, ok := jwtMessages[ae.Code]
	switch {
	case ae.Code == auth.CodeInvalidToken && errors.Is(err, token.ErrMalformed):
		msg = "Error decoding signature"
	case ae.Code == auth.CodeInvalidCode:
		msg = withAttempts(ae)
	case !ok:
		msg = ae.Detail
	}
	e := jwtGQLError(msg, strings.ToUpper(ae.Code), ae.RetryAfter)
	if len(ae.Fields) > 0 {
		e.Extensions["fields"] = ae.Fields
	}
	if ae.AttemptsRemaining != nil {
		e.Extensions["attemptsRemaining"] = *ae.AttemptsRemaining
	}
	return e
}

func jwtGQLError(message, code string, retryAfter time.Duration) *gqlerror.Error {
	e := &gqlerror.Error{Message: message, Extensions: map[string]any{"code": code}}
	if retryAfter > 0 {
		e.Extensions["retryAfter"] = seconds(retryAfter)
	}
	return e
}
