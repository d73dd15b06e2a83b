package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Error codes: the stable catalogue clients program against. httpapi maps each to an HTTP status in
// one table; the README and the OpenAPI document list them.
const (
	CodeValidation         = "validation_failed"
	CodeInvalidCredentials = "invalid_credentials"
	CodeInvalidCode        = "invalid_code"
	CodeRecentlySent       = "code_recently_sent"
	CodeTooManyCodes       = "too_many_codes"
	CodeLoginThrottled     = "login_throttled"
	CodeInvalidRefresh     = "invalid_refresh_token"
	CodeRefreshReused      = "refresh_token_reused"
	CodeSessionExpired     = "session_expired"
	CodeSessionRevoked     = "session_revoked"
	CodeAccountDisabled    = "account_disabled"
	CodeInvalidToken       = "invalid_token"
	CodeTokenExpired       = "token_expired"
	CodeNotFound           = "not_found"
	CodePasswordUnchanged  = "password_unchanged"
	CodeEmailTaken         = "email_taken"
	CodeOTPRequired        = "otp_required"
	CodeInvalidOTP         = "invalid_otp"
	CodeTOTPAlreadyEnabled = "totp_already_enabled"
	CodeTOTPSetupRequired  = "totp_setup_required"
	CodeTOTPNotEnabled     = "totp_not_enabled"
	CodeOverloaded         = "overloaded"
	CodeUnavailable        = "unavailable"
	// Operator codes, answered by the service's tenant methods (the command line, the admin API).
	CodeTenantExists   = "tenant_exists"
	CodeTenantHasUsers = "tenant_has_users"
	// Admin API codes: no usable admin key, and an action outside what the key may do.
	CodeAdminKeyRequired = "admin_key_required"
	CodeForbidden        = "forbidden"
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldName spells a field the service names in errors (camelCase, as the HTTP APIs do) with lower-case
// words joined by sep: secondStep is second_step as a configuration key and second-step as a flag.
func FieldName(field string, sep rune) string {
	var b strings.Builder
	for _, r := range field {
		if unicode.IsUpper(r) {
			b.WriteRune(sep)
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Error is the one error type the service returns to its callers: a catalogue code, a message safe to
// show the client, and the extras some codes carry.
type Error struct {
	Code              string
	Detail            string
	Fields            []FieldError
	RetryAfter        time.Duration
	AttemptsRemaining *int
	// Authenticator, on otp_required, says the code wanted is the authenticator app's (or a recovery
	// code) and nothing was emailed.
	Authenticator bool
	Err           error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the catalogue code of err, or "" when err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Validation collects field errors; Err returns nil when there are none.
type Validation []FieldError

// Add records a problem with a field.
func (v *Validation) Add(field, message string) { *v = append(*v, FieldError{field, message}) }

// Err turns the collected problems into a validation_failed error.
func (v Validation) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: CodeValidation, Detail: "The request has invalid fields.", Fields: v}
}

func errInvalidCredentials() error {
	return newError(CodeInvalidCredentials, "The email or password is incorrect.")
}

func errInvalidRefresh() error {
	return newError(CodeInvalidRefresh, "The refresh token is invalid.")
}

func errDisabled() error { return newError(CodeAccountDisabled, "This account is disabled.") }

func errSessionRevoked() error {
	return newError(CodeSessionRevoked, "The session has ended; log in again.")
}
