package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
)

// Problem is an RFC 9457 problem details body with Latch's stable code.
type Problem struct {
	Title             string            `json:"title"`
	Status            int               `json:"status"`
	Code              string            `json:"code"`
	Detail            string            `json:"detail,omitempty"`
	Errors            []auth.FieldError `json:"errors,omitempty"`
	AttemptsRemaining *int              `json:"attemptsRemaining,omitempty"`
	RequestID         string            `json:"requestId,omitempty"`
}

// Codes answered by the HTTP layer itself, beside the service's catalogue.
const (
	codeMalformed        = "malformed_request"
	codeUnsupportedMedia = "unsupported_media_type"
	codeTooLarge         = "payload_too_large"
	codeMethodNotAllowed = "method_not_allowed"
	codeRateLimited      = "rate_limited"
	codeNotReady         = "not_ready"
	codeInternal         = "internal_error"
	// Answered for net/http, which refuses these requests before the router sees them (listener.go).
	codeHeadersTooLarge   = "headers_too_large"
	codeNotImplemented    = "not_implemented"
	codeHTTPVersion       = "http_version_not_supported"
	codeExpectationFailed = "expectation_failed"
)

type catalogueEntry struct {
	status int
	title  string
}

// catalogue maps every error code to its HTTP status and title: the one place that does.
var catalogue = map[string]catalogueEntry{
	auth.CodeValidation:         {http.StatusBadRequest, "Invalid request"},
	codeMalformed:               {http.StatusBadRequest, "Malformed request"},
	auth.CodePasswordUnchanged:  {http.StatusBadRequest, "Password unchanged"},
	auth.CodeInvalidCredentials: {http.StatusUnauthorized, "Invalid credentials"},
	auth.CodeInvalidCode:        {http.StatusUnauthorized, "Invalid code"},
	auth.CodeInvalidRefresh:     {http.StatusUnauthorized, "Invalid refresh token"},
	auth.CodeRefreshReused:      {http.StatusUnauthorized, "Refresh token reused"},
	auth.CodeSessionExpired:     {http.StatusUnauthorized, "Session expired"},
	auth.CodeSessionRevoked:     {http.StatusUnauthorized, "Session revoked"},
	auth.CodeAccountDisabled:    {http.StatusUnauthorized, "Account disabled"},
	auth.CodeInvalidToken:       {http.StatusUnauthorized, "Invalid access token"},
	auth.CodeTokenExpired:       {http.StatusUnauthorized, "Access token expired"},
	auth.CodeOTPRequired:        {http.StatusUnauthorized, "One-time code required"},
	auth.CodeInvalidOTP:         {http.StatusUnauthorized, "Invalid one-time code"},
	auth.CodeAdminKeyRequired:   {http.StatusUnauthorized, "Admin key required"},
	auth.CodeForbidden:          {http.StatusForbidden, "Forbidden"},
	auth.CodeNotFound:           {http.StatusNotFound, "Not found"},
	codeMethodNotAllowed:        {http.StatusMethodNotAllowed, "Method not allowed"},
	auth.CodeTOTPAlreadyEnabled: {http.StatusConflict, "Two-factor authentication already on"},
	auth.CodeTOTPSetupRequired:  {http.StatusConflict, "No authenticator setup"},
	auth.CodeTOTPNotEnabled:     {http.StatusConflict, "Two-factor authentication not on"},
	auth.CodeEmailTaken:         {http.StatusConflict, "Email taken"},
	auth.CodeTenantExists:       {http.StatusConflict, "Tenant exists"},
	auth.CodeTenantHasUsers:     {http.StatusConflict, "Tenant has users"},
	codeTooLarge:                {http.StatusRequestEntityTooLarge, "Payload too large"},
	codeUnsupportedMedia:        {http.StatusUnsupportedMediaType, "Unsupported media type"},
	codeExpectationFailed:       {http.StatusExpectationFailed, "Expectation failed"},
	codeHeadersTooLarge:         {http.StatusRequestHeaderFieldsTooLarge, "Headers too large"},
	auth.CodeRecentlySent:       {http.StatusTooManyRequests, "Code recently sent"},
	auth.CodeTooManyCodes:       {http.StatusTooManyRequests, "Too many codes"},
	auth.CodeLoginThrottled:     {http.StatusTooManyRequests, "Too many failed attempts"},
	codeRateLimited:             {http.StatusTooManyRequests, "Too many requests"},
	codeInternal:                {http.StatusInternalServerError, "Internal error"},
	codeNotImplemented:          {http.StatusNotImplemented, "Not implemented"},
	codeHTTPVersion:             {http.StatusHTTPVersionNotSupported, "HTTP version not supported"},
	auth.CodeOverloaded:         {http.StatusServiceUnavailable, "Overloaded"},
	auth.CodeUnavailable:        {http.StatusServiceUnavailable, "Unavailable"},
	codeNotReady:                {http.StatusServiceUnavailable, "Not ready"},
}

// Catalogue lists every error code with its status, for documentation and tests.
func Catalogue() map[string]int {
	out := make(map[string]int, len(catalogue))
	for code, e := range catalogue {
		out[code] = e.status
	}
	return out
}

// httpError is an error raised by the HTTP layer with a catalogue code.
type httpError struct {
	code       string
	detail     string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.code + ": " + e.detail }

func problemFor(err error) (Problem, time.Duration, bool) {
	var ae *auth.Error
	var he *httpError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		e, ok := catalogue[ae.Code]
		if !ok {
			return Problem{}, 0, false
		}
		return Problem{Title: e.title, Status: e.status, Code: ae.Code, Detail: ae.Detail, Errors: ae.Fields,
			AttemptsRemaining: ae.AttemptsRemaining}, ae.RetryAfter, true
	case errors.As(err, &he):
		e := catalogue[he.code]
		return Problem{Title: e.title, Status: e.status, Code: he.code, Detail: he.detail}, he.retryAfter, true
	case errors.As(err, &ee):
		var code, detail string
		switch ee.Code {
		case http.StatusNotFound:
			code, detail = auth.CodeNotFound, "No such resource."
		case http.StatusMethodNotAllowed:
			code, detail = codeMethodNotAllowed, "This method is not allowed on this resource."
		case http.StatusRequestEntityTooLarge:
			code, detail = codeTooLarge, "The request body exceeds 64 KiB."
		case http.StatusUnsupportedMediaType:
			code, detail = codeUnsupportedMedia, "Send application/json or form data."
		case http.StatusBadRequest:
			code, detail = codeMalformed, "The request could not be read."
		case http.StatusTooManyRequests:
			code, detail = codeRateLimited, "Too many requests; slow down."
		default:
			return Problem{}, 0, false
		}
		e := catalogue[code]
		return Problem{Title: e.title, Status: e.status, Code: code, Detail: detail}, 0, true
	}
	return Problem{}, 0, false
}

// errorHandler renders every error as problem+json, or in the shape of the surface whose prefix the
// path is under. Anything not in the catalogue is a 500 whose cause is logged with the request id and
// never shown to the client.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	failed := func() {
		s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if sf := s.surfaceOf(c.Request().URL.Path); sf != nil {
		// The surface knows its own errors (a missing header, a body it cannot read): only what it
		// answers with a 500 is a failure worth logging.
		sf.WriteError(c, err)
		if c.Response().Status == http.StatusInternalServerError {
			failed()
		}
		return
	}
	p, retry, ok := problemFor(err)
	if p.Code == auth.CodeUnavailable {
		s.log.WarnContext(c.Request().Context(), "database unavailable", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if !ok {
		failed()
		cl := Classify(err)
		p = Problem{Title: catalogue[cl.Code].title, Status: cl.Status, Code: cl.Code, Detail: cl.Detail}
	}
	p.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	SetRetryAfter(c, Classification{Status: p.Status, RetryAfter: retry})
	writeProblem(c, p)
}

func writeProblem(c echo.Context, p Problem) {
	body, _ := json.Marshal(p)
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method != http.MethodHead {
		c.Response().Write(body)
	}
}
