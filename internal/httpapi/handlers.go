package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/token"
)

type credentialsRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TenantID string `json:"tenantId"`
	Locale   string `json:"locale"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	OTP      string `json:"otp"`
	TenantID string `json:"tenantId"`
	// Mode is how the tokens are handed out when the login answers them (with otp, or when the
	// tenant's second step is off).
	Mode string `json:"mode"`
}

type codeRequest struct {
	Email      string `json:"email"`
	EmailToken string `json:"emailToken"`
	TenantID   string `json:"tenantId"`
	Mode       string `json:"mode"`
}

// registerCodeRequest is codeRequest with the password an invitee chooses when accepting.
type registerCodeRequest struct {
	Email      string `json:"email"`
	EmailToken string `json:"emailToken"`
	TenantID   string `json:"tenantId"`
	Mode       string `json:"mode"`
	Password   string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refreshToken"`
	Mode         string `json:"mode"`
}

type logoutRequest struct {
	RefreshToken string `json:"refreshToken"`
	All          bool   `json:"all"`
}

type verifyRequest struct {
	Token string `json:"token"`
}

type messageResponse struct {
	Message string `json:"message"`
}

type loginResponse struct {
	Message   string `json:"message"`
	ExpiresIn int64  `json:"expiresIn"`
}

type tokenResponse struct {
	AccessToken      string `json:"accessToken"`
	RefreshToken     string `json:"refreshToken,omitempty"`
	TokenType        string `json:"tokenType"`
	ExpiresIn        int64  `json:"expiresIn"`
	RefreshExpiresIn int64  `json:"refreshExpiresIn"`
}

type meResponse struct {
	ID            string          `json:"id"`
	Email         string          `json:"email"`
	EmailVerified bool            `json:"emailVerified"`
	CreatedAt     time.Time       `json:"createdAt"`
	TenantID      string          `json:"tenantId"`
	Role          string          `json:"role"`
	Metadata      json.RawMessage `json:"metadata"`
	TOTPEnabled   bool            `json:"totpEnabled"`
}

type sessionResponse struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
	Current    bool      `json:"current"`
}

type verifyResponse struct {
	Valid   bool           `json:"valid"`
	Payload map[string]any `json:"payload"`
}

// refreshCookie is where mode "cookie" keeps the refresh token, out of reach of page scripts.
const refreshCookie = "latch_refresh"

const modeCookie = "cookie"

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "err", err)
			return &httpError{code: codeNotReady, detail: "The database is not reachable."}
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", s.cfg.JWKS())
}

func (s *Server) register(c echo.Context) error {
	var req credentialsRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	tenant, err := requestTenant(c, req.TenantID)
	if err != nil {
		return err
	}
	err = s.svc.Register(c.Request().Context(), auth.Credentials{Email: req.Email, Password: req.Password, TenantID: tenant,
		Locale: req.Locale, Meta: Meta(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, messageResponse{"Check your email for a six-digit code to confirm your address."})
}

func (s *Server) validateRegister(c echo.Context) error {
	var req registerCodeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	code := codeRequest{Email: req.Email, EmailToken: req.EmailToken, TenantID: req.TenantID, Mode: req.Mode}
	return s.validateCode(c, s.svc.ValidateRegister, code, req.Password)
}

func (s *Server) validateLogin(c echo.Context) error {
	var req codeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	return s.validateCode(c, s.svc.ValidateLogin, req, "")
}

func (s *Server) validateCode(c echo.Context, validate func(context.Context, auth.CodeInput) (auth.TokenPair, error), req codeRequest, password string) error {
	if err := checkMode(req.Mode); err != nil {
		return err
	}
	tenant, err := requestTenant(c, req.TenantID)
	if err != nil {
		return err
	}
	pair, err := validate(c.Request().Context(), auth.CodeInput{Email: req.Email, Code: req.EmailToken, TenantID: tenant, Password: password, Meta: Meta(c)})
	if err != nil {
		return err
	}
	return s.writePair(c, pair, req.Mode)
}

func checkMode(mode string) error {
	if mode == "" || mode == "json" || mode == modeCookie {
		return nil
	}
	return fieldError("mode", `must be "json" or "cookie"`)
}

// fieldError is a validation error naming one field.
func fieldError(field, message string) error {
	var v auth.Validation
	v.Add(field, message)
	return v.Err()
}

func (s *Server) writePair(c echo.Context, p auth.TokenPair, mode string) error {
	resp := tokenResponse{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer",
		ExpiresIn: p.ExpiresIn, RefreshExpiresIn: p.RefreshExpiresIn}
	if mode == modeCookie {
		c.SetCookie(&http.Cookie{Name: refreshCookie, Value: p.RefreshToken, Path: cookiePath(c.Request()), MaxAge: int(p.RefreshExpiresIn),
			HttpOnly: true, Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
		resp.RefreshToken = ""
	}
	return c.JSON(http.StatusOK, resp)
}

// login answers {message, expiresIn} while a code is on its way, or the token pair itself when the
// tenant's second step is off.
func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := checkMode(req.Mode); err != nil {
		return err
	}
	tenant, err := requestTenant(c, req.TenantID)
	if err != nil {
		return err
	}
	res, err := s.svc.Login(c.Request().Context(), auth.Credentials{Email: req.Email, Password: req.Password, OTP: req.OTP,
		TenantID: tenant, Meta: Meta(c)})
	if err != nil {
		return err
	}
	if res.Tokens != nil {
		return s.writePair(c, *res.Tokens, req.Mode)
	}
	return c.JSON(http.StatusOK, loginResponse{Message: "Check your email for a six-digit login code.", ExpiresIn: res.ExpiresIn})
}

// refreshFrom takes the token from the body, else from the cookie of mode "cookie".
func refreshFrom(c echo.Context, body string) (string, bool) {
	if body != "" {
		return body, false
	}
	if ck, err := c.Cookie(refreshCookie); err == nil && ck.Value != "" {
		return ck.Value, true
	}
	return "", false
}

func (s *Server) refresh(c echo.Context) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := checkMode(req.Mode); err != nil {
		return err
	}
	tok, fromCookie := refreshFrom(c, req.RefreshToken)
	if tok == "" {
		return fieldError("refreshToken", "is required")
	}
	pair, err := s.svc.Refresh(c.Request().Context(), tok, Meta(c))
	if err != nil {
		return err
	}
	mode := req.Mode
	if fromCookie && mode == "" {
		mode = modeCookie
	}
	return s.writePair(c, pair, mode)
}

func (s *Server) logout(c echo.Context) error {
	var req logoutRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in := auth.LogoutInput{All: req.All, Meta: Meta(c)}
	in.RefreshToken, _ = refreshFrom(c, req.RefreshToken)
	if in.RefreshToken == "" && s.bearer(c) != "" {
		p, err := s.authenticate(c, true)
		if err != nil {
			return err
		}
		in.Principal = &p
	}
	if err := s.svc.Logout(c.Request().Context(), in); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) me(c echo.Context) error {
	p, err := s.authenticate(c, false)
	if err != nil {
		return err
	}
	u, err := s.svc.Me(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, meFrom(u))
}

func meFrom(u auth.User) meResponse {
	return meResponse{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil, CreatedAt: u.CreatedAt,
		TenantID: u.TenantID, Role: u.Role, Metadata: u.Metadata, TOTPEnabled: u.TOTPEnabled}
}

// clearRefreshCookie ends the browser's copy of the refresh token once its session is over.
func (s *Server) clearRefreshCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: refreshCookie, Value: "", Path: cookiePath(c.Request()), MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
}

func (s *Server) verify(c echo.Context) error {
	var req verifyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	claims, err := s.svc.Verify(c.Request().Context(), req.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, verifyResponse{Valid: true, Payload: claimsPayload(claims)})
}

// claimsPayload is the JWT payload as a client would decode it.
func claimsPayload(c token.Claims) map[string]any {
	p := map[string]any{"iss": c.Issuer, "sub": c.Subject, "sid": c.SessionID, "jti": c.ID, "aud": c.Audience,
		"iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix(), "email": c.Email, "amr": c.AMR}
	if c.TenantID != "" {
		p["tid"] = c.TenantID
	}
	if c.Role != "" {
		p["role"] = c.Role
	}
	if !c.AuthTime.IsZero() {
		p["auth_time"] = c.AuthTime.Unix()
	}
	return p
}

func (s *Server) sessions(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	list, err := s.svc.Sessions(c.Request().Context(), p)
	if err != nil {
		return err
	}
	out := make([]sessionResponse, 0, len(list))
	for _, x := range list {
		out = append(out, sessionResponse{ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.Ends(),
			IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == p.Claims.SessionID})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteSession(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	if err := s.svc.RevokeSession(c.Request().Context(), p, c.Param("id"), Meta(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type sandboxEmail struct {
	ID      string    `json:"id,omitempty"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Purpose string    `json:"purpose"`
	Code    string    `json:"code,omitempty"`
	SentAt  time.Time `json:"sentAt"`
	Text    string    `json:"text"`
	HTML    string    `json:"html"`
}

func (s *Server) sandboxEmails(c echo.Context) error {
	if !s.cfg.SandboxAllowRemote && !loopbackClient(c.RealIP()) {
		// The inbox shows live codes: off this machine it does not exist unless the operator says so.
		return echo.ErrNotFound
	}
	to := c.QueryParam("to")
	if to == "" {
		return fieldError("to", "is required")
	}
	msgs := s.cfg.Sandbox.List(to)
	out := make([]sandboxEmail, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, sandboxEmail{ID: m.ID, To: m.To, Subject: m.Subject, Purpose: m.Purpose, Code: m.Code,
			SentAt: m.SentAt.UTC(), Text: m.Text, HTML: m.HTML})
	}
	return c.JSON(http.StatusOK, out)
}

type forgotRequest struct {
	Email    string `json:"email"`
	TenantID string `json:"tenantId"`
}

type resetRequest struct {
	Email       string `json:"email"`
	EmailToken  string `json:"emailToken"`
	NewPassword string `json:"newPassword"`
	TenantID    string `json:"tenantId"`
}

type changeRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

func (s *Server) forgotPassword(c echo.Context) error {
	var req forgotRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	tenant, err := requestTenant(c, req.TenantID)
	if err != nil {
		return err
	}
	if err := s.svc.ForgotPassword(c.Request().Context(), req.Email, tenant, Meta(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, messageResponse{"If an account exists for that address, a reset code is on its way."})
}

func (s *Server) resetPassword(c echo.Context) error {
	var req resetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	tenant, err := requestTenant(c, req.TenantID)
	if err != nil {
		return err
	}
	err = s.svc.ResetPassword(c.Request().Context(), auth.ResetInput{Email: req.Email, Code: req.EmailToken,
		NewPassword: req.NewPassword, TenantID: tenant, Meta: Meta(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageResponse{"Your password was reset; every session was signed out. Log in with the new password."})
}

func (s *Server) changePassword(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req changeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.svc.ChangePassword(c.Request().Context(), p, req.CurrentPassword, req.NewPassword, Meta(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageResponse{"Your password was changed; your other sessions were signed out."})
}

// loopbackClient reports whether the client is this machine. ip is the client address as the IP
// extractor found it: the peer, or X-Forwarded-For only when the peer is a trusted proxy, so a proxy
// on this machine does not make every client local.
func loopbackClient(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Unmap().IsLoopback()
}

type totpSetupRequest struct {
	Password string `json:"password"`
}

type totpSetupResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauthUrl"`
	QRCode     string `json:"qrCode"`
}

type totpEnableRequest struct {
	OTP string `json:"otp"`
}

type recoveryCodesResponse struct {
	Message       string   `json:"message"`
	RecoveryCodes []string `json:"recoveryCodes"`
}

type totpDisableRequest struct {
	Password string `json:"password"`
	OTP      string `json:"otp"`
}

func (s *Server) totpSetup(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req totpSetupRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	setup, err := s.svc.SetupTOTP(c.Request().Context(), p, req.Password, Meta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, totpSetupResponse{Secret: setup.Secret, OTPAuthURL: setup.OTPAuthURL, QRCode: setup.QRCode})
}

func (s *Server) totpEnable(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req totpEnableRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	codes, err := s.svc.EnableTOTP(c.Request().Context(), p, auth.TOTPEnableInput{Code: req.OTP, Meta: Meta(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes,
		Message: "Two-factor authentication is on. Keep these recovery codes somewhere safe: each works once in place of a code, and they are not shown again."})
}

func (s *Server) totpDisable(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req totpDisableRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	err = s.svc.DisableTOTP(c.Request().Context(), p, auth.TOTPDisableInput{Code: req.OTP, Password: req.Password, RequirePassword: true, Meta: Meta(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageResponse{"Two-factor authentication is off; logins use emailed codes again."})
}
