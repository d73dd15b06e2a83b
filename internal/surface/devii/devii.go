// Package devii serves Latch in the shape of Devii's auth endpoint (seed 004): POST <prefix>/auth with
// login (the email), password and tenantid, as form data or JSON, answers the tokens, and GET
// <prefix>/auth with the refresh token as a Bearer refreshes them. It is a thin adapter over
// auth.SignIn and auth.Refresh: the second step is the same call again with otp, and every rule
// (throttling, codes, rotation, the tenant's settings) is the service's. Every error of its routes is
// answered by WriteError, the one place that maps errors to Devii's {"error", "status"} shape.
package devii

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/httpapi"
)

// Surface is the Devii surface, mounted with httpapi.Server.Mount.
type Surface struct {
	svc    *auth.Service
	prefix string
}

// New serves svc under prefix (such as "/devii").
func New(svc *auth.Service, prefix string) *Surface { return &Surface{svc: svc, prefix: prefix} }

// Prefix is where the surface is mounted.
func (s *Surface) Prefix() string { return s.prefix }

// Routes registers POST and GET /auth; the login is throttled per IP like v2's.
func (s *Surface) Routes(g *echo.Group, throttle echo.MiddlewareFunc) {
	g.POST("/auth", s.login, throttle)
	g.GET("/auth", s.refresh)
}

// loginRequest holds Devii's field names.
type loginRequest struct {
	Login    string
	Password string
	TenantID string
	OTP      string
}

// answer is Devii's success shape. RoleID is the user's role: a JSON number when the role is one (as
// Devii's numeric role ids are), else a string.
type answer struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	Message      string          `json:"message"`
	RoleID       any             `json:"roleid"`
	Routes       json.RawMessage `json:"routes"`
}

func (s *Surface) login(c echo.Context) error {
	req, err := decode(c.Request())
	if err != nil {
		return err
	}
	tenant, err := httpapi.RequestTenant(c.Request().Context(), req.TenantID)
	if err != nil {
		return err
	}
	pair, err := s.svc.SignIn(c.Request().Context(), auth.SignInInput{Email: req.Login, Password: req.Password, OTP: req.OTP,
		TenantID: tenant, Meta: httpapi.Meta(c)})
	if err != nil {
		return err
	}
	return s.answer(c, pair)
}

// errMissingAuthorization is Devii's answer to a refresh without a Bearer token.
var errMissingAuthorization = errors.New("missing Authorization header")

func (s *Surface) refresh(c echo.Context) error {
	scheme, tok, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errMissingAuthorization
	}
	pair, err := s.svc.Refresh(c.Request().Context(), tok, httpapi.Meta(c))
	if err != nil {
		return err
	}
	return s.answer(c, pair)
}

func (s *Surface) answer(c echo.Context, pair auth.TokenPair) error {
	tenant, err := s.svc.Tenant(c.Request().Context(), pair.TenantID)
	if err != nil {
		return err
	}
	var role any = pair.Role
	if _, err := strconv.ParseUint(pair.Role, 10, 63); err == nil {
		role = json.Number(pair.Role)
	}
	return c.JSON(http.StatusOK, answer{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken,
		Message: "Logged in as " + pair.Email + ".", RoleID: role, Routes: tenant.Settings.Routes})
}

// badRequest is a body Devii's fields cannot be read from.
type badRequest struct {
	status  int
	message string
}

func (e *badRequest) Error() string { return e.message }

// decode reads login, password, tenantid and otp from JSON or form data. In JSON, tenantid and otp
// may be numbers (Devii's tenant ids are); unknown fields are ignored.
func decode(r *http.Request) (loginRequest, error) {
	var req loginRequest
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	switch {
	case mt == "" || mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json"):
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return req, readError(err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return req, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			return req, &badRequest{http.StatusBadRequest, "The body must be a JSON object."}
		}
		for name, dst := range map[string]*string{"login": &req.Login, "password": &req.Password, "tenantid": &req.TenantID, "otp": &req.OTP} {
			v, ok := fields[name]
			if !ok {
				continue
			}
			if *dst, ok = scalar(v, name != "login" && name != "password"); !ok {
				return req, &badRequest{http.StatusBadRequest, name + " must be a string."}
			}
		}
	case mt == echo.MIMEApplicationForm || mt == echo.MIMEMultipartForm:
		var err error
		if mt == echo.MIMEMultipartForm {
			err = r.ParseMultipartForm(64 << 10)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return req, readError(err)
		}
		// Credentials come from the body only: a URL ends up in logs and browser history.
		req = loginRequest{Login: r.PostFormValue("login"), Password: r.PostFormValue("password"),
			TenantID: r.PostFormValue("tenantid"), OTP: r.PostFormValue("otp")}
	default:
		return req, &badRequest{http.StatusUnsupportedMediaType, "Send form data or JSON."}
	}
	return req, nil
}

// scalar reads a JSON string, or a number where numbers are allowed; null is absent.
func scalar(raw json.RawMessage, numberOK bool) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	if string(raw) == "null" {
		return "", true
	}
	var n json.Number
	if numberOK && json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

func readError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &badRequest{http.StatusRequestEntityTooLarge, "The request body exceeds 64 KiB."}
	}
	return &badRequest{http.StatusBadRequest, "The request body could not be read."}
}

// problem is Devii's error shape; status repeats the HTTP status.
type problem struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// Messages a client written from Devii's documentation recognises.
const (
	msgInvalidCredentials = "Invalid credentials."
	msgMissingHeader      = "Unauthorized access: Missing Authorization Header"
)

// WriteError answers any error of the surface's routes in Devii's shape. Devii answers bad
// credentials with 403, and so does Latch here; an unknown tenant, or a login that is not an email,
// answers the same, as no account can match it.
func (s *Surface) WriteError(c echo.Context, err error) {
	status, msg := describe(err)
	cl := httpapi.Classify(err)
	cl.Status = status
	httpapi.SetRetryAfter(c, cl)
	c.JSON(status, problem{Error: msg, Status: status})
}

func describe(err error) (int, string) {
	var bad *badRequest
	switch {
	case errors.As(err, &bad):
		return bad.status, bad.message
	case errors.Is(err, errMissingAuthorization):
		return http.StatusUnauthorized, msgMissingHeader
	case errors.Is(err, httpapi.ErrTenantMismatch):
		return http.StatusBadRequest, "tenantid names another tenant than the path."
	}
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Code == auth.CodeValidation {
		for _, f := range ae.Fields {
			if f.Field == "otp" {
				return http.StatusUnauthorized, "Invalid one-time code: send the six digits from the email as otp."
			}
		}
		return http.StatusForbidden, msgInvalidCredentials
	}
	cl := httpapi.Classify(err)
	code := cl.Code
	if ae != nil {
		code = ae.Code
	}
	switch code {
	case auth.CodeInvalidCredentials:
		return http.StatusForbidden, msgInvalidCredentials
	case auth.CodeAccountDisabled:
		return http.StatusForbidden, "This account is disabled."
	case auth.CodeOTPRequired:
		if ae != nil && ae.Authenticator {
			return http.StatusUnauthorized, "One-time code required: two-factor authentication is on and no code was emailed; " +
				"send the code from your authenticator app (or a recovery code) as otp with the same login, password and tenantid."
		}
		return http.StatusUnauthorized, "One-time code required: a six-digit code was emailed to you; " +
			"send it as otp with the same login, password and tenantid."
	case auth.CodeInvalidCode:
		msg := "Invalid one-time code: it is wrong or has expired."
		if ae != nil && ae.AttemptsRemaining != nil {
			msg += " Tries left: " + strconv.Itoa(*ae.AttemptsRemaining) + "."
		}
		return http.StatusUnauthorized, msg
	case auth.CodePasswordUnchanged:
		return http.StatusBadRequest, "New password must be different from old password."
	}
	return cl.Status, cl.Detail
}
