package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// The tenant prefix. Every route of every surface also answers under /t/{tenantId}/..., as Keycloak's
// /realms/{realm}: /t/acme/v2/auth/login, /t/179/devii/auth, /t/acme/graphql. It is one mechanism for
// all of them, in two parts:
//
//  1. stripTenantPrefix runs before routing (Echo's Pre): it removes /t/{id} from the path and records
//     id in the request's context, so each surface registers its routes once, without the prefix.
//  2. RequestTenant is what a handler calls to learn the tenant of a request that names one: the
//     path's, else the body's field (tenantId, tenantid ...), else "" for the default tenant. A body
//     naming another tenant than the path is ErrTenantMismatch, which each surface answers as bad
//     input (400) in its own shape.
//
// A surface mounted with Server.Mount gets the prefix for free; one that serves its own http.Handler
// behind Echo (a GraphQL server) reads the tenant with PathTenant from the request's context. The id
// is not checked here: the service checks it like any tenant id, so an unknown or malformed one
// answers as the surface answers an unknown tenant. Requests that carry tokens (refresh, me) are
// honoured on any path: a token names its own tenant.

// TenantPathPrefix is the first segment of a tenant-prefixed path.
const TenantPathPrefix = "/t/"

type pathTenantKey struct{}

// ErrTenantMismatch means a request's body names a tenant other than its /t/{id} path.
var ErrTenantMismatch = errors.New("the body names another tenant than the path")

// stripTenantPrefix rewrites /t/{id}/rest to /rest before routing and records id.
func stripTenantPrefix(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if id, rest, ok := splitTenantPath(req.URL.Path); ok {
			if req.URL.RawPath != "" {
				if _, rawRest, ok := splitTenantPath(req.URL.RawPath); ok {
					req.URL.RawPath = rawRest
				} else {
					req.URL.RawPath = ""
				}
			}
			req.URL.Path = rest
			c.SetRequest(req.WithContext(context.WithValue(req.Context(), pathTenantKey{}, id)))
		}
		return next(c)
	}
}

// splitTenantPath splits /t/{id}/rest into id and /rest; ok is false for any other path.
func splitTenantPath(path string) (id, rest string, ok bool) {
	after, found := strings.CutPrefix(path, TenantPathPrefix)
	if !found {
		return "", "", false
	}
	id, rest, _ = strings.Cut(after, "/")
	if id == "" {
		return "", "", false
	}
	return id, "/" + rest, true
}

// PathTenant is the tenant id of a request made under /t/{id}, or "".
func PathTenant(ctx context.Context) string {
	id, _ := ctx.Value(pathTenantKey{}).(string)
	return id
}

// PathPrefix is "/t/{id}" for a request made under the tenant prefix, else "": what a surface puts
// before its own paths when it names them to the client (a cookie's Path, a link).
func PathPrefix(ctx context.Context) string {
	if id := PathTenant(ctx); id != "" {
		return TenantPathPrefix + id
	}
	return ""
}

// RequestTenant is the tenant a request names: its path's, else body (the body's tenant field), else
// "" (the default tenant). A body naming another tenant than the path is ErrTenantMismatch.
func RequestTenant(ctx context.Context, body string) (string, error) {
	path := PathTenant(ctx)
	switch {
	case path == "":
		return body, nil
	case body != "" && body != path:
		return "", ErrTenantMismatch
	}
	return path, nil
}

// requestTenant is RequestTenant for v2: a mismatch is a validation error on tenantId.
func requestTenant(c echo.Context, body string) (string, error) {
	id, err := RequestTenant(c.Request().Context(), body)
	if errors.Is(err, ErrTenantMismatch) {
		return "", fieldError("tenantId", "names another tenant than the path ("+PathPrefix(c.Request().Context())+")")
	}
	return id, err
}

// cookiePath is where a cookie of the v2 auth routes is sent back: under the tenant prefix when the
// request came that way, so the browser returns it to the same tenant's routes.
func cookiePath(r *http.Request) string { return PathPrefix(r.Context()) + "/v2/auth" }
