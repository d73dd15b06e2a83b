package graphql

import (
	"context"
	"errors"
	"fmt"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/token"
)

// The Saleor set answers every failure a client can act on in the payload's errors list, with HTTP
// 200 and Saleor's AccountErrorCode; only failures of the server itself become top-level errors.

func (m mutation) TokenCreate(ctx context.Context, email, password string, otp, tenantID *string) (*CreateToken, error) {
	pair, err := m.signIn(ctx, email, password, otp, tenantID)
	if err != nil {
		errs, err := saleorErrors(err, "email")
		return &CreateToken{Errors: errs}, err
	}
	return &CreateToken{Token: &pair.AccessToken, RefreshToken: &pair.RefreshToken, Errors: []AccountError{},
		userID: subject(pair.AccessToken)}, nil
}

func (m mutation) TokenRefresh(ctx context.Context, refreshToken, tok, _ *string) (*RefreshToken, error) {
	raw, err := refreshArg(refreshToken, tok)
	if err != nil {
		err = errMissingToken
	} else {
		var pair auth.TokenPair
		if pair, err = m.svc.Refresh(ctx, raw, requestOf(ctx).meta); err == nil {
			return &RefreshToken{Token: &pair.AccessToken, RefreshToken: &pair.RefreshToken, Payload: payload(pair.AccessToken),
				Errors: []AccountError{}, userID: subject(pair.AccessToken)}, nil
		}
	}
	errs, err := saleorErrors(err, "refreshToken")
	return &RefreshToken{Errors: errs}, err
}

func (m mutation) TokenVerify(ctx context.Context, tok string) (*VerifyToken, error) {
	claims, err := m.verify(ctx, tok)
	if err != nil {
		errs, err := saleorErrors(err, "token")
		return &VerifyToken{Errors: errs}, err
	}
	sub, _ := claims["sub"].(string)
	return &VerifyToken{IsValid: true, Payload: claims, Errors: []AccountError{}, userID: sub}, nil
}

func (m mutation) TokensDeactivateAll(ctx context.Context) (*DeactivateAllUserTokens, error) {
	req := requestOf(ctx)
	err := errMissingToken
	if req.accessToken != "" {
		var p auth.Principal
		if p, err = m.svc.Authenticate(ctx, req.accessToken, true); err == nil {
			err = m.svc.Logout(ctx, auth.LogoutInput{Principal: &p, All: true, Meta: req.meta})
		}
	}
	if err != nil {
		errs, err := saleorErrors(err, "token")
		return &DeactivateAllUserTokens{Errors: errs}, err
	}
	return &DeactivateAllUserTokens{Errors: []AccountError{}}, nil
}

// errMissingToken is a mutation called without the token it works on.
var errMissingToken = errors.New("graphql: no access token in Authorization")

// saleorErrors is the one mapping from the service's errors to Saleor's: the errors list of the
// payload, or a top-level error for what no client input caused. tokenField names the argument a
// token error is about.
func saleorErrors(err error, tokenField string) ([]AccountError, error) {
	one := func(code AccountErrorCode, field, message string) ([]AccountError, error) {
		e := AccountError{Code: code, Message: &message}
		if field != "" {
			e.Field = &field
		}
		return []AccountError{e}, nil
	}
	var limited *rateLimited
	switch {
	case errors.Is(err, errMissingToken) && tokenField == "refreshToken":
		return one(AccountErrorCodeJwtMissingToken, tokenField, "A refresh token is required, as refreshToken (or token).")
	case errors.Is(err, errMissingToken):
		return one(AccountErrorCodeJwtMissingToken, tokenField, "An access token is required (Authorization: JWT <token>).")
	case errors.As(err, &limited):
		return one(AccountErrorCodeLoginAttemptDelayed, "", fmt.Sprintf("Too many requests from this address; retry in %d s.", seconds(limited.retryAfter)))
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return nil, err
	}
	switch ae.Code {
	case auth.CodeValidation:
		out := make([]AccountError, 0, len(ae.Fields))
		for _, f := range ae.Fields {
			code := AccountErrorCodeInvalid
			if f.Message == "is required" {
				code = AccountErrorCodeRequired
			}
			out = append(out, AccountError{Code: code, Field: ptr(f.Field), Message: ptr(f.Field + " " + f.Message)})
		}
		return out, nil
	case auth.CodeInvalidCredentials:
		return one(AccountErrorCodeInvalidCredentials, "email", ae.Detail)
	case auth.CodeAccountDisabled:
		return one(AccountErrorCodeInactive, "email", ae.Detail)
	case auth.CodeOTPRequired:
		return one(AccountErrorCodeOtpRequired, "otp", ae.Detail)
	case auth.CodeInvalidCode:
		return one(AccountErrorCodeInvalidOtp, "otp", withAttempts(ae))
	case auth.CodeInvalidOTP:
		return one(AccountErrorCodeInvalidOtp, "otp", ae.Detail)
	case auth.CodeLoginThrottled, auth.CodeRecentlySent, auth.CodeTooManyCodes:
		return one(AccountErrorCodeLoginAttemptDelayed, "", fmt.Sprintf("%s Retry in %d s.", ae.Detail, seconds(ae.RetryAfter)))
	case auth.CodeTokenExpired, auth.CodeSessionExpired:
		return one(AccountErrorCodeJwtSignatureExpired, tokenField, ae.Detail)
	case auth.CodeInvalidToken:
		if errors.Is(err, token.ErrMalformed) {
			return one(AccountErrorCodeJwtDecodeError, tokenField, "The token could not be decoded.")
		}
		return one(AccountErrorCodeJwtInvalidToken, tokenField, ae.Detail)
	case auth.CodeInvalidRefresh, auth.CodeRefreshReused, auth.CodeSessionRevoked:
		return one(AccountErrorCodeJwtInvalidToken, tokenField, ae.Detail)
	}
	return one(AccountErrorCodeGraphqlError, "", ae.Detail)
}
