// Package httpapi is Latch's HTTP surface: Echo routes, request decoding, middleware and the one
// mapping from errors to problem+json. Handlers translate; the rules live in package auth.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/logging"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/metrics"
)

// Config is what the HTTP layer needs beyond the service.
type Config struct {
	// RequestTimeout is every request's deadline, carried into its queries through the request's
	// context; 0 means none (tests of the router alone).
	RequestTimeout  time.Duration
	TrustedProxies  []netip.Prefix
	AllowQueryParam bool // accept ?access_token= (off by default: URLs end up in logs)
	CookieSecure    bool
	IPPerMinute     int // 0 disables the per-IP bucket
	IPBurst         int
	Sandbox         *mail.Inbox // non-nil serves GET /v2/sandbox/emails
	// SandboxAllowRemote lets non-loopback peers read the sandbox inbox.
	SandboxAllowRemote bool
	// InternalListener moves /metrics off the public router to InternalHandler.
	InternalListener bool
	// AdminPublic and AdminInternal serve the admin API (/v2/admin) on the public router and on
	// InternalHandler.
	AdminPublic, AdminInternal bool
	// CORS is which browser origins may call the client-facing routes.
	CORS    CORS
	Ready   func(ctx context.Context) error
	JWKS    func() []byte    // the public signing keys, for /.well-known/jwks.json
	Metrics *metrics.Metrics // nil: no /metrics
}

// Server holds the Echo instance and what handlers need.
type Server struct {
	echo     *echo.Echo
	admin    *echo.Echo // the admin API on the internal listener; nil when it is not served there
	svc      *auth.Service
	cfg      Config
	log      *slog.Logger
	ips      *ipLimiter
	surfaces []Surface
	ops      map[string]string // route → auth operation whose outcomes are counted
}

// New builds the router.
func New(cfg Config, svc *auth.Service, log *slog.Logger) *Server {
	s := &Server{svc: svc, cfg: cfg, log: log, ops: maps.Clone(operations)}
	if cfg.IPPerMinute > 0 {
		s.ips = newIPLimiter(cfg.IPPerMinute, cfg.IPBurst)
	}
	s.echo = s.newRouter(!cfg.InternalListener)
	s.routes()
	if cfg.AdminPublic {
		s.adminRoutes(s.echo)
	}
	if cfg.AdminInternal {
		s.admin = s.newRouter(false)
		s.adminRoutes(s.admin)
	}
	return s
}

// newRouter is an Echo instance with the middleware every route gets: the tenant prefix, request ids,
// the access log, metrics (and /metrics when withMetrics), panic recovery, headers and the body limit.
func (s *Server) newRouter(withMetrics bool) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	e.Pre(stripTenantPrefix)
	e.Use(s.requestID, s.deadline, s.accessLog)
	if s.cfg.Metrics != nil {
		e.Use(s.observe)
		if withMetrics {
			e.GET("/metrics", echo.WrapHandler(s.cfg.Metrics.Handler()))
		}
	}
	e.Use(s.recoverPanic, secureHeaders, s.cors, limitBody)
	return e
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// InternalHandler serves what operators and their tools use on the internal listener: /metrics,
// /healthz and, when configured there, the admin API (also under /t/{tenant}). Nothing there is meant
// for clients.
func (s *Server) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	if s.admin != nil {
		mux.Handle("/v2/admin/", s.admin)
		mux.Handle(TenantPathPrefix, s.admin)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/.well-known/jwks.json", s.jwks)
	e.GET("/v2/openapi.json", s.openapi)

	throttled := s.throttle
	g := e.Group("/v2/auth")
	g.POST("/register", s.register, throttled)
	g.POST("/validate-register", s.validateRegister, throttled)
	g.POST("/login", s.login, throttled)
	g.POST("/validate-login", s.validateLogin, throttled)
	g.POST("/refresh", s.refresh)
	g.POST("/logout", s.logout)
	g.GET("/me", s.me)
	g.POST("/verify", s.verify)
	g.GET("/sessions", s.sessions)
	g.DELETE("/sessions/:id", s.deleteSession)
	g.POST("/password/forgot", s.forgotPassword, throttled)
	g.POST("/password/reset", s.resetPassword, throttled)
	g.POST("/password/change", s.changePassword, throttled)
	g.POST("/totp/setup", s.totpSetup, throttled)
	g.POST("/totp/enable", s.totpEnable, throttled)
	g.POST("/totp/disable", s.totpDisable, throttled)
	g.POST("/email/change", s.requestEmailChange, throttled)
	g.POST("/email/confirm", s.confirmEmailChange, throttled)
	g.POST("/me/deletion", s.requestDeletion, throttled)
	g.DELETE("/me", s.deleteMe, throttled)
	g.GET("/me/export", s.exportMe, throttled)
	if s.cfg.Sandbox != nil {
		e.GET("/v2/sandbox/emails", s.sandboxEmails)
	}
}

// ipExtractor honours X-Forwarded-For only from the configured proxies; with none it uses the peer.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		_, n, err := net.ParseCIDR(p.String())
		if err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// requestID keeps a sane incoming X-Request-Id or makes one, answers with it, and puts it in the
// request context so every log line of the request carries it.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		req := c.Request()
		c.SetRequest(req.WithContext(logging.WithRequestID(req.Context(), id)))
		return next(c)
	}
}

// deadline bounds the request: every query it makes, every wait for a connection or a hashing slot,
// ends with it. Without one, a locked table held requests (and pool connections) for as long as the
// lock, and their answers were lost to the server's write timeout even when their work committed.
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.RequestTimeout <= 0 {
		return next
	}
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.ErrorContext(c.Request().Context(), "panic", "panic", r)
				err = &panicError{value: r}
			}
		}()
		return next(c)
	}
}

type panicError struct{ value any }

func (p *panicError) Error() string { return "panic in handler" }

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		attrs := []slog.Attr{slog.String("method", req.Method), slog.String("route", c.Path()), slog.String("path", req.URL.Path),
			slog.Int("status", c.Response().Status), slog.Duration("duration", time.Since(start)),
			slog.String("ip", c.RealIP()), slog.Int64("bytes", c.Response().Size)}
		if tenant := PathTenant(req.Context()); tenant != "" {
			attrs = append(attrs, slog.String("path_tenant", tenant))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		return next(c)
	}
}

// limitBody refuses bodies over 64 KiB: at once by Content-Length, or while reading.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > maxBody {
			return &httpError{code: codeTooLarge, detail: "The request body exceeds 64 KiB."}
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, maxBody)
		return next(c)
	}
}

// AccessToken extracts the access token of a request on any surface: Authorization "Bearer" or
// "JWT", Authentication "JWT" (django-graphql-jwt's spelling), or ?access_token= when allowQuery
// (tokens.allow_query_param).
func AccessToken(c echo.Context, allowQuery bool) string {
	for _, name := range []string{echo.HeaderAuthorization, "Authentication"} {
		h := c.Request().Header.Get(name)
		if scheme, tok, ok := strings.Cut(h, " "); ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT")) {
			return strings.TrimSpace(tok)
		}
	}
	if allowQuery {
		return c.QueryParam("access_token")
	}
	return ""
}

// bearer is AccessToken under this server's tokens.allow_query_param.
func (s *Server) bearer(c echo.Context) string { return AccessToken(c, s.cfg.AllowQueryParam) }

// authenticate requires an access token; live also requires its session to be live.
func (s *Server) authenticate(c echo.Context, live bool) (auth.Principal, error) {
	raw := s.bearer(c)
	if raw == "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="latch"`)
		return auth.Principal{}, &auth.Error{Code: auth.CodeInvalidToken, Detail: "An access token is required (Authorization: Bearer <token>)."}
	}
	p, err := s.svc.Authenticate(c.Request().Context(), raw, live)
	if err != nil {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="latch", error="invalid_token"`)
	}
	return p, err
}

// Meta describes the client of a request for sessions and the event log: its IP (X-Forwarded-For only
// from trusted proxies) and User-Agent, as sent: the service bounds and cleans them before anything
// stores them.
func Meta(c echo.Context) auth.Meta {
	return auth.Meta{IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
}
