package httpapi

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
)

// The admin API, /v2/admin: tenants, users, their sessions and the security event log, for operators'
// tools. Every request carries an admin key (Authorization: Bearer lak_...). Bodies are JSON only:
// settings and metadata are nested objects that form data cannot carry. Under /t/{tenant} the API is
// narrowed to that tenant, as a key of that tenant would see it.

const adminCtxKey = "latch.admin"

func (s *Server) adminRoutes(e *echo.Echo) {
	// The key is checked per route rather than for the group, so an unknown path or method answers
	// 404 or 405 as everywhere else.
	g := e.Group("/v2/admin")
	for _, r := range []struct {
		method, path string
		handler      echo.HandlerFunc
	}{
		{http.MethodGet, "/tenants", s.adminListTenants},
		{http.MethodPost, "/tenants", s.adminCreateTenant},
		{http.MethodGet, "/tenants/:id", s.adminGetTenant},
		{http.MethodPatch, "/tenants/:id", s.adminUpdateTenant},
		{http.MethodDelete, "/tenants/:id", s.adminDeleteTenant},
		{http.MethodGet, "/users", s.adminListUsers},
		{http.MethodPost, "/users", s.adminCreateUser},
		{http.MethodGet, "/users/:id", s.adminGetUser},
		{http.MethodPatch, "/users/:id", s.adminUpdateUser},
		{http.MethodDelete, "/users/:id", s.adminDeleteUser},
		{http.MethodGet, "/users/:id/sessions", s.adminListSessions},
		{http.MethodDelete, "/users/:id/sessions", s.adminRevokeSessions},
		{http.MethodDelete, "/users/:id/sessions/:sid", s.adminRevokeSession},
		{http.MethodDelete, "/users/:id/totp", s.adminResetTOTP},
		{http.MethodGet, "/events", s.adminListEvents},
		{http.MethodGet, "/webhooks/deliveries", s.adminListWebhookDeliveries},
		{http.MethodPost, "/webhooks/deliveries/:id/retry", s.adminRetryWebhookDelivery},
	} {
		g.Add(r.method, r.path, r.handler, s.requireAdminKey)
	}
}

// requireAdminKey authenticates the admin key and narrows it to the tenant of the path, if any.
func (s *Server) requireAdminKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		key := ""
		if scheme, tok, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
			key = strings.TrimSpace(tok)
		}
		k, err := s.svc.AuthenticateAdmin(ctx, key)
		if err != nil {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="latch admin"`)
			return err
		}
		by, err := s.svc.AdminWithin(ctx, k.Admin(), PathTenant(ctx))
		if err != nil {
			return err
		}
		c.Set(adminCtxKey, by)
		return next(c)
	}
}

func adminOf(c echo.Context) auth.Admin { return c.Get(adminCtxKey).(auth.Admin) }

// decodeAdmin reads a JSON body; a form is refused, as it cannot carry the nested objects.
func decodeAdmin(c echo.Context, dst any) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != "" && mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json") {
		return &httpError{code: codeUnsupportedMedia, detail: "The admin API takes JSON bodies (Content-Type: application/json)."}
	}
	return decodeJSON(c.Request().Body, dst)
}

// adminQuery reads the query parameters of a listing, naming each one that is malformed.
type adminQuery struct {
	c echo.Context
	v auth.Validation
}

func (q *adminQuery) page() auth.PageRequest {
	p := auth.PageRequest{Cursor: q.c.QueryParam("cursor")}
	if raw := q.c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			q.v.Add("limit", auth.PageLimitRule)
		}
		p.Limit = n // the service checks the upper bound
	}
	return p
}

func (q *adminQuery) boolean(name string) *bool {
	raw := q.c.QueryParam(name)
	if raw == "" {
		return nil
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		q.v.Add(name, "must be true or false")
		return nil
	}
	return &b
}

func (q *adminQuery) time(name string) time.Time {
	raw := q.c.QueryParam(name)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		q.v.Add(name, "must be a time such as 2026-03-01T09:00:00Z")
	}
	return t
}

// list is the answer of every listing: a page of items and the cursor of the next, null on the last.
type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

// writeList answers a page of items, each shown as out shows it.
func writeList[T, U any](c echo.Context, items []T, next string, out func(T) U) error {
	l := list[U]{Items: make([]U, 0, len(items))}
	for _, x := range items {
		l.Items = append(l.Items, out(x))
	}
	if next != "" {
		l.NextCursor = &next
	}
	return c.JSON(http.StatusOK, l)
}

type tenantSettings struct {
	SecondStep      string          `json:"secondStep"`
	RefreshRotation bool            `json:"refreshRotation"`
	AppName         string          `json:"appName"`
	MailFrom        string          `json:"mailFrom"`
	Locale          string          `json:"locale"`
	AllowedOrigins  []string        `json:"allowedOrigins"`
	Routes          json.RawMessage `json:"routes"`
	Issuer          string          `json:"issuer"`
}

type adminTenant struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Settings  tenantSettings `json:"settings"`
	CreatedAt time.Time      `json:"createdAt"`
}

func tenantOut(t auth.Tenant) adminTenant {
	st := t.Settings
	origins := st.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	return adminTenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Settings: tenantSettings{SecondStep: st.SecondStep,
		RefreshRotation: st.RefreshRotation, AppName: st.AppName, MailFrom: st.MailFrom, Locale: st.Locale,
		AllowedOrigins: origins, Routes: st.Routes, Issuer: st.Issuer}}
}

// settingsRequest is the settings a request sets; absent ones are left as they are (defaults on
// creation).
type settingsRequest struct {
	SecondStep      *string         `json:"secondStep"`
	RefreshRotation *bool           `json:"refreshRotation"`
	AppName         *string         `json:"appName"`
	MailFrom        *string         `json:"mailFrom"`
	Locale          *string         `json:"locale"`
	AllowedOrigins  *[]string       `json:"allowedOrigins"`
	Routes          json.RawMessage `json:"routes"`
	Issuer          *string         `json:"issuer"`
}

type createTenantRequest struct {
	ID       string           `json:"id"`
	Name     *string          `json:"name"`
	Settings *settingsRequest `json:"settings"`
}

type updateTenantRequest struct {
	Name     *string          `json:"name"`
	Settings *settingsRequest `json:"settings"`
}

func tenantInput(name *string, st *settingsRequest) auth.TenantInput {
	in := auth.TenantInput{Name: name}
	if st != nil {
		in.SecondStep, in.RefreshRotation, in.AppName, in.MailFrom = st.SecondStep, st.RefreshRotation, st.AppName, st.MailFrom
		in.Locale, in.AllowedOrigins, in.Routes, in.Issuer = st.Locale, st.AllowedOrigins, st.Routes, st.Issuer
	}
	return in
}

func (s *Server) adminListTenants(c echo.Context) error {
	q := adminQuery{c: c}
	p := q.page()
	if err := q.v.Err(); err != nil {
		return err
	}
	page, err := s.svc.ListTenants(c.Request().Context(), adminOf(c), p)
	if err != nil {
		return err
	}
	return writeList(c, page.Items, page.NextCursor, tenantOut)
}

func (s *Server) adminCreateTenant(c echo.Context) error {
	var req createTenantRequest
	if err := decodeAdmin(c, &req); err != nil {
		return err
	}
	name := req.Name
	if name == nil {
		name = &req.ID
	}
	t, err := s.svc.CreateTenant(c.Request().Context(), adminOf(c), req.ID, tenantInput(name, req.Settings))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v2/admin/tenants/"+t.ID)
	return c.JSON(http.StatusCreated, tenantOut(t))
}

func (s *Server) adminGetTenant(c echo.Context) error {
	t, err := s.svc.AdminTenant(c.Request().Context(), adminOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tenantOut(t))
}

func (s *Server) adminUpdateTenant(c echo.Context) error {
	var req updateTenantRequest
	if err := decodeAdmin(c, &req); err != nil {
		return err
	}
	t, err := s.svc.UpdateTenant(c.Request().Context(), adminOf(c), c.Param("id"), tenantInput(req.Name, req.Settings))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tenantOut(t))
}

func (s *Server) adminDeleteTenant(c echo.Context) error {
	q := adminQuery{c: c}
	force := q.boolean("force")
	if err := q.v.Err(); err != nil {
		return err
	}
	if err := s.svc.DeleteTenant(c.Request().Context(), adminOf(c), c.Param("id"), force != nil && *force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type adminUser struct {
	ID              string          `json:"id"`
	TenantID        string          `json:"tenantId"`
	Email           string          `json:"email"`
	EmailVerified   bool            `json:"emailVerified"`
	EmailVerifiedAt *time.Time      `json:"emailVerifiedAt,omitempty"`
	Disabled        bool            `json:"disabled"`
	TOTPEnabled     bool            `json:"totpEnabled"`
	Role            string          `json:"role"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       time.Time       `json:"createdAt"`
	UpdatedAt       time.Time       `json:"updatedAt"`
}

func userOut(u auth.User) adminUser {
	return adminUser{ID: u.ID, TenantID: u.TenantID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil,
		EmailVerifiedAt: u.EmailVerifiedAt, Disabled: !u.Active(), TOTPEnabled: u.TOTPEnabled, Role: u.Role, Metadata: u.Metadata,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

type createUserRequest struct {
	Email         string          `json:"email"`
	TenantID      string          `json:"tenantId"`
	Password      string          `json:"password"`
	Role          *string         `json:"role"`
	Metadata      json.RawMessage `json:"metadata"`
	EmailVerified bool            `json:"emailVerified"`
	Invite        bool            `json:"invite"`
	Locale        string          `json:"locale"`
}

type updateUserRequest struct {
	Role          *string         `json:"role"`
	Metadata      json.RawMessage `json:"metadata"`
	Disabled      *bool           `json:"disabled"`
	EmailVerified *bool           `json:"emailVerified"`
}

func (s *Server) adminListUsers(c echo.Context) error {
	q := adminQuery{c: c}
	p := q.page()
	f := auth.UserFilter{TenantID: c.QueryParam("tenantId"), EmailPrefix: c.QueryParam("emailPrefix"), Disabled: q.boolean("disabled")}
	if err := q.v.Err(); err != nil {
		return err
	}
	page, err := s.svc.ListUsers(c.Request().Context(), adminOf(c), f, p)
	if err != nil {
		return err
	}
	return writeList(c, page.Items, page.NextCursor, userOut)
}

func (s *Server) adminCreateUser(c echo.Context) error {
	var req createUserRequest
	if err := decodeAdmin(c, &req); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(c.Request().Context(), adminOf(c), auth.NewUser{TenantID: req.TenantID, Email: req.Email,
		Password: req.Password, Role: req.Role, Metadata: req.Metadata, EmailVerified: req.EmailVerified, Invite: req.Invite,
		Locale: req.Locale})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v2/admin/users/"+u.ID)
	return c.JSON(http.StatusCreated, userOut(u))
}

func (s *Server) adminGetUser(c echo.Context) error {
	u, err := s.svc.User(c.Request().Context(), adminOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, userOut(u))
}

func (s *Server) adminUpdateUser(c echo.Context) error {
	var req updateUserRequest
	if err := decodeAdmin(c, &req); err != nil {
		return err
	}
	u, err := s.svc.UpdateUser(c.Request().Context(), adminOf(c), c.Param("id"), auth.UserInput{Role: req.Role,
		Metadata: req.Metadata, Disabled: req.Disabled, EmailVerified: req.EmailVerified})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, userOut(u))
}

func (s *Server) adminDeleteUser(c echo.Context) error {
	if err := s.svc.DeleteUser(c.Request().Context(), adminOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type adminSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
	AMR        []string  `json:"amr"`
}

func (s *Server) adminListSessions(c echo.Context) error {
	sessions, err := s.svc.UserSessions(c.Request().Context(), adminOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return writeList(c, sessions, "", func(x auth.Session) adminSession {
		return adminSession{ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.Ends(),
			IP: x.IP, UserAgent: x.UserAgent, AMR: strings.Fields(x.AMR)}
	})
}

func (s *Server) adminRevokeSessions(c echo.Context) error {
	if err := s.svc.RevokeUserSessions(c.Request().Context(), adminOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) adminRevokeSession(c echo.Context) error {
	if err := s.svc.RevokeUserSession(c.Request().Context(), adminOf(c), c.Param("id"), c.Param("sid")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) adminResetTOTP(c echo.Context) error {
	if err := s.svc.ResetTOTP(c.Request().Context(), adminOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type eventActor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

type adminEvent struct {
	ID        int64       `json:"id"`
	Kind      string      `json:"kind"`
	CreatedAt time.Time   `json:"createdAt"`
	TenantID  string      `json:"tenantId,omitempty"`
	UserID    string      `json:"userId,omitempty"`
	SessionID string      `json:"sessionId,omitempty"`
	IP        string      `json:"ip"`
	UserAgent string      `json:"userAgent"`
	Detail    string      `json:"detail"`
	Actor     *eventActor `json:"actor,omitempty"`
}

func (s *Server) adminListEvents(c echo.Context) error {
	q := adminQuery{c: c}
	p := q.page()
	f := auth.EventFilter{TenantID: c.QueryParam("tenantId"), UserID: c.QueryParam("userId"), Kind: c.QueryParam("kind"),
		Since: q.time("since"), Until: q.time("until")}
	if err := q.v.Err(); err != nil {
		return err
	}
	page, err := s.svc.ListEvents(c.Request().Context(), adminOf(c), f, p)
	if err != nil {
		return err
	}
	return writeList(c, page.Items, page.NextCursor, func(e auth.LoggedEvent) adminEvent {
		ev := adminEvent{ID: e.ID, Kind: e.Kind, CreatedAt: e.CreatedAt, TenantID: e.TenantID, UserID: e.UserID,
			SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent, Detail: e.Detail}
		if e.Actor.Type != "" {
			ev.Actor = &eventActor{Type: e.Actor.Type, ID: e.Actor.ID, Name: e.Actor.Name}
		}
		return ev
	})
}

// adminDelivery is a webhook delivery as the admin view shows it: what was sent where and how it
// went. The body is left out: the receiver has it, and it is the same for every attempt.
type adminDelivery struct {
	ID            string     `json:"id"`
	EventID       int64      `json:"eventId"`
	Type          string     `json:"type"`
	Endpoint      string     `json:"endpoint"`
	TenantID      string     `json:"tenantId,omitempty"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	CreatedAt     time.Time  `json:"createdAt"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	LastStatus    *int       `json:"lastStatus"`
	LastError     string     `json:"lastError"`
	FinishedAt    *time.Time `json:"finishedAt"`
}

func deliveryOut(d auth.WebhookDelivery) adminDelivery {
	out := adminDelivery{ID: d.ID, EventID: d.EventID, Type: d.EventType, Endpoint: d.Endpoint, TenantID: d.TenantID, Status: d.Status,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt, LastError: d.LastError, FinishedAt: d.FinishedAt}
	if d.Status == auth.DeliveryPending {
		next := d.NextAttemptAt
		out.NextAttemptAt = &next
		if d.LastError != "" {
			out.Status = auth.DeliveryFailed
		}
	}
	if d.LastStatus != 0 {
		st := d.LastStatus
		out.LastStatus = &st
	}
	return out
}

func (s *Server) adminListWebhookDeliveries(c echo.Context) error {
	q := adminQuery{c: c}
	p := q.page()
	if err := q.v.Err(); err != nil {
		return err
	}
	f := auth.WebhookFilter{TenantID: c.QueryParam("tenantId"), Status: c.QueryParam("status")}
	page, err := s.svc.ListWebhookDeliveries(c.Request().Context(), adminOf(c), f, p)
	if err != nil {
		return err
	}
	return writeList(c, page.Items, page.NextCursor, deliveryOut)
}

func (s *Server) adminRetryWebhookDelivery(c echo.Context) error {
	d, err := s.svc.RetryWebhookDelivery(c.Request().Context(), adminOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, deliveryOut(d))
}
