// Package directus is the Directus-compatible surface (seed 001): the authentication routes and the
// current-user and two-factor routes that the official @directus/sdk calls, under /directus. It is a
// thin adapter: every rule is the auth service's; this package only reads Directus' request shapes,
// writes its answers ({"data": ...}, snake_case, expires in milliseconds) and maps the service's error
// codes to Directus' error envelope, in one table.
//
// A login is two calls of /auth/login (SPEC 6): the first, with email and password, answers
// INVALID_OTP saying whether a code was emailed (or that the authenticator app is wanted); the second
// carries the same credentials and the code as otp.
package directus

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/httpapi"
)

// Cookie names Directus clients know.
const (
	refreshCookie = "directus_refresh_token"
	sessionCookie = "directus_session_token"
)

// Token delivery modes of login and refresh.
const (
	modeJSON    = "json"
	modeCookie  = "cookie"
	modeSession = "session"
)

// Config is what the surface takes from Latch's configuration.
type Config struct {
	Prefix          string // surfaces.directus.prefix, such as "/directus"
	AllowQueryParam bool   // tokens.allow_query_param: ?access_token= is accepted too
	CookieSecure    bool   // tokens.cookie_secure
}

// Surface serves the Directus routes; mount it with httpapi.Server.Mount.
type Surface struct {
	svc *auth.Service
	cfg Config
}

// New returns the surface for the service.
func New(svc *auth.Service, cfg Config) *Surface { return &Surface{svc: svc, cfg: cfg} }

// Prefix is where the surface answers.
func (s *Surface) Prefix() string { return s.cfg.Prefix }

// Routes adds the routes; the ones that check passwords or codes take the per-IP bucket.
func (s *Surface) Routes(g *echo.Group, throttle echo.MiddlewareFunc) {
	g.POST("/auth/login", s.login, throttle)
	g.POST("/auth/refresh", s.refresh)
	g.POST("/auth/logout", s.logout)
	g.GET("/users/me", s.me)
	g.POST("/users/me/tfa/generate", s.tfaGenerate, throttle)
	g.POST("/users/me/tfa/enable", s.tfaEnable, throttle)
	g.POST("/users/me/tfa/disable", s.tfaDisable, throttle)
}

// Operations names the routes whose outcomes /metrics counts (latch_auth_outcomes_total).
func (s *Surface) Operations() map[string]string {
	return map[string]string{"/auth/login": "directus_login", "/auth/refresh": "directus_refresh", "/auth/logout": "directus_logout",
		"/users/me/tfa/generate": "directus_tfa_generate", "/users/me/tfa/enable": "directus_tfa_enable",
		"/users/me/tfa/disable": "directus_tfa_disable"}
}

type envelope struct {
	Data any `json:"data"`
}

type tokenData struct {
	AccessToken  string `json:"access_token,omitempty"`
	Expires      int64  `json:"expires"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	OTP      string `json:"otp"`
	Mode     string `json:"mode"`
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
	Mode         string `json:"mode"`
}

func checkMode(mode string) error {
	switch mode {
	case modeJSON, modeCookie, modeSession:
		return nil
	}
	var v auth.Validation
	v.Add("mode", `must be "json", "cookie" or "session"`)
	return v.Err()
}

func (s *Surface) login(c echo.Context) error {
	var req loginBody
	if err := httpapi.Decode(c, &req); err != nil {
		return err
	}
	if req.Mode == "" {
		req.Mode = modeJSON
	}
	if err := checkMode(req.Mode); err != nil {
		return err
	}
	// Directus bodies name no tenant: it is the one of the /t/{tenant} path, or the default.
	ctx := c.Request().Context()
	pair, err := s.svc.SignIn(ctx, auth.SignInInput{Email: req.Email, Password: req.Password, OTP: req.OTP,
		TenantID: httpapi.PathTenant(ctx), Meta: httpapi.Meta(c)})
	if err != nil {
		return err
	}
	return s.writeTokens(c, pair, req.Mode)
}

func (s *Surface) refresh(c echo.Context) error {
	var req refreshBody
	if err := httpapi.Decode(c, &req); err != nil {
		return err
	}
	tok := req.RefreshToken
	if req.Mode == "" {
		// Directus' own default: json when the token came in the body, cookie when it did not.
		req.Mode = modeCookie
		if tok != "" {
			req.Mode = modeJSON
		}
	}
	if err := checkMode(req.Mode); err != nil {
		return err
	}
	if tok == "" {
		tok = cookie(c, refreshCookie)
	}
	if tok == "" {
		return missingRefreshToken()
	}
	pair, err := s.svc.Refresh(c.Request().Context(), tok, httpapi.Meta(c))
	if err != nil {
		return err
	}
	return s.writeTokens(c, pair, req.Mode)
}

func missingRefreshToken() error {
	var v auth.Validation
	v.Add("refresh_token", "is required in either the JSON payload or Cookie")
	return v.Err()
}

func (s *Surface) logout(c echo.Context) error {
	var req refreshBody
	if err := httpapi.Decode(c, &req); err != nil {
		return err
	}
	if req.Mode != "" {
		if err := checkMode(req.Mode); err != nil {
			return err
		}
	}
	in := auth.LogoutInput{RefreshToken: req.RefreshToken, Meta: httpapi.Meta(c)}
	if in.RefreshToken == "" {
		in.RefreshToken = cookie(c, refreshCookie)
	}
	if in.RefreshToken == "" {
		// A session-mode client holds only its session cookie (or a bearer): that session ends.
		if s.accessToken(c) == "" {
			return missingRefreshToken()
		}
		p, err := s.principal(c, true)
		if err != nil {
			return err
		}
		in.Principal = &p
	}
	if err := s.svc.Logout(c.Request().Context(), in); err != nil {
		return err
	}
	root := s.root(c)
	for _, ck := range []struct{ name, path string }{{refreshCookie, root + "/auth"}, {sessionCookie, root}} {
		c.SetCookie(&http.Cookie{Name: ck.name, Value: "", Path: ck.path, MaxAge: -1, HttpOnly: true,
			Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
	}
	return c.NoContent(http.StatusNoContent)
}

// writeTokens answers a token pair in the mode asked for: json puts both tokens in the body; cookie
// keeps the refresh token in an httpOnly cookie; session keeps the access token in the session
// cookie as well, so a browser sends it by itself (Latch's access tokens carry no refresh token, so
// the refresh cookie rides along for the session's next refresh).
func (s *Surface) writeTokens(c echo.Context, p auth.TokenPair, mode string) error {
	data := tokenData{AccessToken: p.AccessToken, Expires: p.ExpiresIn * 1000, RefreshToken: p.RefreshToken}
	root := s.root(c)
	if mode == modeCookie || mode == modeSession {
		s.setCookie(c, refreshCookie, p.RefreshToken, root+"/auth", p.RefreshExpiresIn)
		data.RefreshToken = ""
	}
	if mode == modeSession {
		s.setCookie(c, sessionCookie, p.AccessToken, root, p.ExpiresIn)
		data.AccessToken = ""
	}
	return c.JSON(http.StatusOK, envelope{data})
}

func (s *Surface) setCookie(c echo.Context, name, value, path string, maxAge int64) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge), HttpOnly: true,
		Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
}

// root is the path the surface was reached under as the client sent it ("/directus", or under the
// tenant prefix "/t/acme/directus"), for cookie paths.
func (s *Surface) root(c echo.Context) string {
	return httpapi.PathPrefix(c.Request().Context()) + s.cfg.Prefix
}

func cookie(c echo.Context, name string) string {
	if ck, err := c.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

// accessToken is the caller's access token: the shared headers (and query parameter when allowed), else
// the session cookie of session mode.
func (s *Surface) accessToken(c echo.Context) string {
	if tok := httpapi.AccessToken(c, s.cfg.AllowQueryParam); tok != "" {
		return tok
	}
	return cookie(c, sessionCookie)
}

func (s *Surface) principal(c echo.Context, live bool) (auth.Principal, error) {
	raw := s.accessToken(c)
	if raw == "" {
		return auth.Principal{}, &auth.Error{Code: auth.CodeInvalidToken, Detail: "An access token is required (Authorization: Bearer <token>)."}
	}
	return s.svc.Authenticate(c.Request().Context(), raw, live)
}

type meData struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	TFAEnabled    bool   `json:"tfa_enabled"`
	Tenant        string `json:"tenant"`
	Role          string `json:"role"`
}

func (s *Surface) me(c echo.Context) error {
	p, err := s.principal(c, false)
	if err != nil {
		return err
	}
	u, err := s.svc.Me(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, envelope{meData{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil,
		TFAEnabled: u.TOTPEnabled, Tenant: u.TenantID, Role: u.Role}})
}

type generateBody struct {
	Password string `json:"password"`
}

type generateData struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

type enableBody struct {
	Secret string `json:"secret"`
	OTP    string `json:"otp"`
}

type disableBody struct {
	OTP string `json:"otp"`
}

// withBody authenticates the caller against a live session, then reads the body: a request without a
// token is refused before its body is looked at.
func (s *Surface) withBody(c echo.Context, body any, do func(ctx context.Context, p auth.Principal) error) error {
	p, err := s.principal(c, true)
	if err != nil {
		return err
	}
	if err := httpapi.Decode(c, body); err != nil {
		return err
	}
	return do(c.Request().Context(), p)
}

func (s *Surface) tfaGenerate(c echo.Context) error {
	var req generateBody
	return s.withBody(c, &req, func(ctx context.Context, p auth.Principal) error {
		setup, err := s.svc.SetupTOTP(ctx, p, req.Password, httpapi.Meta(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, envelope{generateData{Secret: setup.Secret, OTPAuthURL: setup.OTPAuthURL}})
	})
}

func (s *Surface) tfaEnable(c echo.Context) error {
	var req enableBody
	return s.withBody(c, &req, func(ctx context.Context, p auth.Principal) error {
		// Directus shows no recovery codes; they are kept hashed all the same, and are reachable only
		// by re-enrolling on the v2 API.
		if _, err := s.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: req.OTP, Secret: req.Secret, Meta: httpapi.Meta(c)}); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}

func (s *Surface) tfaDisable(c echo.Context) error {
	var req disableBody
	return s.withBody(c, &req, func(ctx context.Context, p auth.Principal) error {
		if err := s.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Code: req.OTP, Meta: httpapi.Meta(c)}); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}

// directusError is one Directus error code and the status it is answered with.
type directusError struct {
	status int
	code   string
}

// errorCodes maps every code of Latch's catalogue to Directus' own: the one place this surface
// translates errors. A test holds it to the catalogue.
var errorCodes = map[string]directusError{
	auth.CodeValidation:         {http.StatusBadRequest, "INVALID_PAYLOAD"},
	"malformed_request":         {http.StatusBadRequest, "INVALID_PAYLOAD"},
	auth.CodePasswordUnchanged:  {http.StatusBadRequest, "INVALID_PAYLOAD"},
	auth.CodeTOTPAlreadyEnabled: {http.StatusBadRequest, "INVALID_PAYLOAD"},
	auth.CodeTOTPSetupRequired:  {http.StatusBadRequest, "INVALID_PAYLOAD"},
	auth.CodeTOTPNotEnabled:     {http.StatusBadRequest, "INVALID_PAYLOAD"},
	auth.CodeInvalidCredentials: {http.StatusUnauthorized, "INVALID_CREDENTIALS"},
	auth.CodeInvalidRefresh:     {http.StatusUnauthorized, "INVALID_CREDENTIALS"},
	auth.CodeRefreshReused:      {http.StatusUnauthorized, "INVALID_CREDENTIALS"},
	auth.CodeSessionRevoked:     {http.StatusUnauthorized, "INVALID_CREDENTIALS"},
	auth.CodeSessionExpired:     {http.StatusUnauthorized, "TOKEN_EXPIRED"},
	auth.CodeOTPRequired:        {http.StatusUnauthorized, "INVALID_OTP"},
	auth.CodeInvalidOTP:         {http.StatusUnauthorized, "INVALID_OTP"},
	auth.CodeInvalidCode:        {http.StatusUnauthorized, "INVALID_OTP"},
	auth.CodeAccountDisabled:    {http.StatusUnauthorized, "USER_SUSPENDED"},
	auth.CodeTokenExpired:       {http.StatusUnauthorized, "TOKEN_EXPIRED"},
	auth.CodeInvalidToken:       {http.StatusForbidden, "INVALID_TOKEN"},
	auth.CodeNotFound:           {http.StatusNotFound, "ROUTE_NOT_FOUND"},
	"method_not_allowed":        {http.StatusNotFound, "ROUTE_NOT_FOUND"},
	"payload_too_large":         {http.StatusRequestEntityTooLarge, "CONTENT_TOO_LARGE"},
	"unsupported_media_type":    {http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"},
	auth.CodeRecentlySent:       {http.StatusTooManyRequests, "REQUESTS_EXCEEDED"},
	auth.CodeTooManyCodes:       {http.StatusTooManyRequests, "REQUESTS_EXCEEDED"},
	auth.CodeLoginThrottled:     {http.StatusTooManyRequests, "REQUESTS_EXCEEDED"},
	"rate_limited":              {http.StatusTooManyRequests, "REQUESTS_EXCEEDED"},
	auth.CodeOverloaded:         {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
	auth.CodeUnavailable:        {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
	"not_ready":                 {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
	// Answered by the HTTP server before any route, so in problem+json whatever the path
	// (httpapi.WrapListener); listed so the table covers the catalogue.
	"expectation_failed":         {http.StatusExpectationFailed, "INVALID_PAYLOAD"},
	"headers_too_large":          {http.StatusRequestHeaderFieldsTooLarge, "INVALID_PAYLOAD"},
	"not_implemented":            {http.StatusNotImplemented, "INVALID_PAYLOAD"},
	"http_version_not_supported": {http.StatusHTTPVersionNotSupported, "INVALID_PAYLOAD"},
	"internal_error":             {http.StatusInternalServerError, "INTERNAL_SERVER_ERROR"},
	// The admin API's codes, which no Directus route answers; mapped so the table stays whole.
	auth.CodeAdminKeyRequired: {http.StatusUnauthorized, "INVALID_CREDENTIALS"},
	auth.CodeForbidden:        {http.StatusForbidden, "FORBIDDEN"},
	auth.CodeEmailTaken:       {http.StatusBadRequest, "RECORD_NOT_UNIQUE"},
	auth.CodeTenantExists:     {http.StatusBadRequest, "RECORD_NOT_UNIQUE"},
	auth.CodeTenantHasUsers:   {http.StatusBadRequest, "INVALID_PAYLOAD"},
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
}

type errorItem struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// WriteError answers in Directus' error envelope, as application/json: the SDK parses no other type.
func (s *Surface) WriteError(c echo.Context, err error) {
	cl := httpapi.Classify(err)
	e, ok := errorCodes[cl.Code]
	if !ok {
		e = errorCodes["internal_error"]
	}
	msg := cl.Detail
	ext := map[string]any{"code": e.code}
	var ae *auth.Error
	if errors.As(err, &ae) {
		if len(ae.Fields) > 0 {
			var parts []string
			for _, f := range ae.Fields {
				parts = append(parts, `"`+f.Field+`" `+f.Message)
			}
			msg = "Invalid payload. " + strings.Join(parts, "; ") + "."
		}
		if ae.AttemptsRemaining != nil {
			ext["attempts_remaining"] = *ae.AttemptsRemaining
		}
	}
	httpapi.SetRetryAfter(c, httpapi.Classification{Status: e.status, RetryAfter: cl.RetryAfter})
	// The write can only fail on a connection already gone; there is no one left to tell.
	_ = c.JSON(e.status, errorBody{[]errorItem{{Message: msg, Extensions: ext}}})
}
