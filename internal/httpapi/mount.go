package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Surface is a compatibility API served beside v2 by the same server (Devii's, Directus'): it shares
// the request ids, access log, metrics, body limit, panic recovery and the /t/{tenant} prefix, and it
// answers every error under its prefix in its own shape.
type Surface interface {
	// Prefix is the path the surface is mounted at, such as "/devii".
	Prefix() string
	// Routes registers the surface's routes on its group. throttle is the per-IP bucket, for the
	// routes that check passwords or codes or send mail.
	Routes(g *echo.Group, throttle echo.MiddlewareFunc)
	// WriteError answers err in the surface's shape. It gets every error of a request under the
	// prefix, including those raised before its handlers ran (an unknown route, a body over the
	// limit, the per-IP bucket, a panic); Classify tells what they are.
	WriteError(c echo.Context, err error)
}

// Mount serves a surface under its prefix.
func (s *Server) Mount(sf Surface) {
	s.surfaces = append(s.surfaces, sf)
	if on, ok := sf.(operationNamer); ok {
		for route, op := range on.Operations() {
			s.ops[sf.Prefix()+route] = op
		}
	}
	sf.Routes(s.echo.Group(sf.Prefix()), s.throttle)
}

// surfaceOf is the mounted surface a path belongs to, or nil for v2's own.
func (s *Server) surfaceOf(path string) Surface {
	for _, sf := range s.surfaces {
		p := sf.Prefix()
		if path == p || strings.HasPrefix(path, p+"/") {
			return sf
		}
	}
	return nil
}

// Classification is what an error means to a client: the HTTP status, Latch's catalogue code, a
// message fit to show, and when to retry (zero when the answer does not say).
type Classification struct {
	Status     int
	Code       string
	Detail     string
	RetryAfter time.Duration
}

// Classify tells a surface what an error it must answer is, by the same catalogue v2 answers with.
// Anything unexpected is a 500 whose detail says nothing of the cause (the server has logged it).
func Classify(err error) Classification {
	p, retry, ok := problemFor(err)
	if !ok {
		return Classification{Status: http.StatusInternalServerError, Code: codeInternal,
			Detail: "Something went wrong on our side; quote the request id if you report it."}
	}
	return Classification{Status: p.Status, Code: p.Code, Detail: p.Detail, RetryAfter: retry}
}

// SetRetryAfter writes the Retry-After header a 429 or 503 must carry, in whole seconds, at least 1.
func SetRetryAfter(c echo.Context, cl Classification) {
	if cl.Status != http.StatusTooManyRequests && cl.Status != http.StatusServiceUnavailable {
		return
	}
	secs := int64((cl.RetryAfter + time.Second - 1) / time.Second)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
}
