package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
)

// The self-service account routes: email change, deletion and data export. Each acts on the account
// of a live session's access token.

type emailChangeRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewEmail        string `json:"newEmail"`
}

type emailCodeRequest struct {
	EmailToken string `json:"emailToken"`
}

type deletionRequest struct {
	Password string `json:"password"`
}

func (s *Server) requestEmailChange(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req emailChangeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ttl, err := s.svc.RequestEmailChange(c.Request().Context(), p, auth.EmailChangeInput{CurrentPassword: req.CurrentPassword,
		NewEmail: req.NewEmail, Meta: Meta(c)})
	if err != nil {
		return err
	}
	// The same answer whether or not the address is taken: it must not tell.
	return c.JSON(http.StatusOK, loginResponse{Message: "Check the new address for a six-digit code to confirm the change.", ExpiresIn: ttl})
}

func (s *Server) confirmEmailChange(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req emailCodeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	u, err := s.svc.ConfirmEmailChange(c.Request().Context(), p, req.EmailToken, Meta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, meFrom(u))
}

func (s *Server) requestDeletion(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req deletionRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ttl, err := s.svc.RequestDeletion(c.Request().Context(), p, req.Password, Meta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, loginResponse{Message: "Check your email for a six-digit code; send it with DELETE /v2/auth/me to delete the account.", ExpiresIn: ttl})
}

func (s *Server) deleteMe(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	var req emailCodeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.svc.DeleteAccount(c.Request().Context(), p, req.EmailToken, Meta(c)); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// exportResponse is GET /v2/auth/me/export: what is held about the user, and no secret (no password,
// code or token hash, no TOTP secret, no email content).
type exportResponse struct {
	ExportedAt time.Time           `json:"exportedAt"`
	Profile    exportProfile       `json:"profile"`
	Sessions   []exportSession     `json:"sessions"`
	Codes      []exportCode        `json:"pendingCodes"`
	Emails     []exportEmail       `json:"emails"`
	Events     []exportEvent       `json:"securityEvents"`
	TOTP       exportSecondFactors `json:"twoFactor"`
}

type exportProfile struct {
	ID              string          `json:"id"`
	Email           string          `json:"email"`
	TenantID        string          `json:"tenantId"`
	Status          string          `json:"status"`
	Role            string          `json:"role"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       time.Time       `json:"createdAt"`
	UpdatedAt       time.Time       `json:"updatedAt"`
	EmailVerifiedAt *time.Time      `json:"emailVerifiedAt"`
	// Locale is the language of the user's email (their tenant's); absent when none is set.
	Locale string `json:"locale,omitempty"`
}

type exportSession struct {
	ID         string     `json:"id"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt time.Time  `json:"lastUsedAt"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	IP         string     `json:"ip"`
	UserAgent  string     `json:"userAgent"`
	AMR        []string   `json:"amr"`
	Current    bool       `json:"current"`
}

type exportCode struct {
	Purpose           string    `json:"purpose"`
	CreatedAt         time.Time `json:"createdAt"`
	ExpiresAt         time.Time `json:"expiresAt"`
	AttemptsRemaining int       `json:"attemptsRemaining"`
}

type exportEmail struct {
	Template  string     `json:"template"`
	Purpose   string     `json:"purpose"`
	To        string     `json:"to"`
	QueuedAt  time.Time  `json:"queuedAt"`
	SentAt    *time.Time `json:"sentAt"`
	FailedAt  *time.Time `json:"failedAt"`
	Delivered bool       `json:"delivered"`
}

type exportEvent struct {
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	SessionID string    `json:"sessionId,omitempty"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"userAgent"`
	Detail    string    `json:"detail,omitempty"`
	// ActorType says who made the change when it was not the user's own action: "admin_key", "cli";
	// the operator's key names stay with the operator.
	ActorType string `json:"actorType,omitempty"`
}

type exportSecondFactors struct {
	TOTPEnabled bool `json:"totpEnabled"`
}

func (s *Server) exportMe(c echo.Context) error {
	p, err := s.authenticate(c, true)
	if err != nil {
		return err
	}
	d, err := s.svc.Export(c.Request().Context(), p)
	if err != nil {
		return err
	}
	u := d.User
	out := exportResponse{ExportedAt: s.svc.Now().UTC(),
		Profile: exportProfile{ID: u.ID, Email: u.Email, TenantID: u.TenantID, Status: u.Status, Role: u.Role, Metadata: u.Metadata,
			CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, EmailVerifiedAt: u.EmailVerifiedAt, Locale: d.Locale},
		Sessions: make([]exportSession, 0, len(d.Sessions)), Codes: make([]exportCode, 0, len(d.Codes)),
		Emails: make([]exportEmail, 0, len(d.Mail)), Events: make([]exportEvent, 0, len(d.Events)),
		TOTP: exportSecondFactors{TOTPEnabled: u.TOTPEnabled}}
	for _, x := range d.Sessions {
		out.Sessions = append(out.Sessions, exportSession{ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.Ends(),
			RevokedAt: x.RevokedAt, IP: x.IP, UserAgent: x.UserAgent, AMR: strings.Fields(x.AMR), Current: x.ID == p.Claims.SessionID})
	}
	for _, x := range d.Codes {
		out.Codes = append(out.Codes, exportCode{Purpose: x.Purpose, CreatedAt: x.CreatedAt, ExpiresAt: x.ExpiresAt,
			AttemptsRemaining: max(x.MaxAttempts-x.Attempts, 0)})
	}
	for _, x := range d.Mail {
		out.Emails = append(out.Emails, exportEmail{Template: x.Template, Purpose: x.Purpose, To: x.To, QueuedAt: x.CreatedAt,
			SentAt: x.SentAt, FailedAt: x.DeadAt, Delivered: x.SentAt != nil})
	}
	for _, x := range d.Events {
		out.Events = append(out.Events, exportEvent{Kind: x.Kind, At: x.CreatedAt, SessionID: x.SessionID, IP: x.IP,
			UserAgent: x.UserAgent, Detail: x.Detail, ActorType: x.Actor.Type})
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="latch-export.json"`)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, out)
}
