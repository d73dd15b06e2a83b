package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
)

// CORS is which browser origins may call Latch (server.cors).
type CORS struct {
	// AllowedOrigins are allowed on every tenant, beside each tenant's own allowed origins.
	AllowedOrigins   []string
	AllowCredentials bool
	MaxAge           time.Duration
	// Admin extends CORS to the admin API.
	Admin bool
}

// What a preflight allows: every method a CORS route answers, and the request headers Latch reads
// (the access token in either of its headers, the body's type, a request id to correlate logs).
// There is no tenant header: a page names its tenant in the path (/t/{id}/...) or the body.
const (
	corsAllowMethods = "GET, POST, PATCH, DELETE"
	corsAllowHeaders = "Authorization, Authentication, Content-Type, X-Request-Id"
	// What a page may read beyond the safelisted headers: when to retry a 429 or 503, the request id
	// to quote, and why a token was refused.
	corsExposeHeaders = "Retry-After, X-Request-Id, WWW-Authenticate"
)

// corsScope reports whether path is served to browser pages of other origins: the auth API of v2,
// the compatibility surfaces, the public keys and the OpenAPI document; the admin API only when
// configured. The sandbox inbox never is (it shows live codes), nor /metrics or the health checks.
func (s *Server) corsScope(path string) bool {
	switch {
	case strings.HasPrefix(path, "/v2/auth/"), path == "/.well-known/jwks.json", path == "/v2/openapi.json":
		return true
	case path == "/v2/admin" || strings.HasPrefix(path, "/v2/admin/"):
		return s.cfg.CORS.Admin
	}
	return s.surfaceOf(path) != nil
}

// cors answers preflights and marks the answers of allowed origins. An origin is allowed when it is
// in server.cors.allowed_origins or in the allowed origins of the request's tenant, which for a
// preflight can only come from the path (/t/{id}/...; without the prefix, the default tenant): a
// preflight has no body. For any other origin nothing changes: no CORS header, the preflight falls
// through to the router (which answers OPTIONS as it always has), and the browser refuses.
//
// Every answer in scope says Vary: Origin, whatever the request's Origin, so a cache never hands one
// origin's answer to another; with it, a disallowed origin's answer is byte for byte the answer to
// no Origin at all.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	maxAge := strconv.FormatInt(int64(s.cfg.CORS.MaxAge/time.Second), 10)
	return func(c echo.Context) error {
		req := c.Request()
		if !s.corsScope(req.URL.Path) {
			return next(c)
		}
		h := c.Response().Header()
		h.Add(echo.HeaderVary, echo.HeaderOrigin)
		origin := req.Header.Get(echo.HeaderOrigin)
		if origin == "" || !s.originAllowed(c, origin) {
			return next(c)
		}
		h.Set(echo.HeaderAccessControlAllowOrigin, origin)
		if s.cfg.CORS.AllowCredentials {
			h.Set(echo.HeaderAccessControlAllowCredentials, "true")
		}
		if req.Method == http.MethodOptions && req.Header.Get(echo.HeaderAccessControlRequestMethod) != "" {
			h.Set(echo.HeaderAccessControlAllowMethods, corsAllowMethods)
			h.Set(echo.HeaderAccessControlAllowHeaders, corsAllowHeaders)
			h.Set(echo.HeaderAccessControlMaxAge, maxAge)
			return c.NoContent(http.StatusNoContent)
		}
		h.Set(echo.HeaderAccessControlExposeHeaders, corsExposeHeaders)
		return next(c)
	}
}

func (s *Server) originAllowed(c echo.Context, origin string) bool {
	if !auth.ValidOrigin(origin) {
		return false
	}
	if auth.OriginListed(s.cfg.CORS.AllowedOrigins, origin) {
		return true
	}
	return s.svc != nil && s.svc.OriginAllowed(c.Request().Context(), PathTenant(c.Request().Context()), origin)
}
