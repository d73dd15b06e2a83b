package httpapi

import (
	"time"

	"github.com/labstack/echo/v4"
)

// operations names the auth routes whose outcomes are counted.
var operations = map[string]string{
	"/v2/auth/register": "register", "/v2/auth/validate-register": "validate_register",
	"/v2/auth/login": "login", "/v2/auth/validate-login": "validate_login", "/v2/auth/refresh": "refresh",
	"/v2/auth/logout": "logout", "/v2/auth/password/forgot": "password_forgot",
	"/v2/auth/password/reset": "password_reset", "/v2/auth/password/change": "password_change",
	"/v2/auth/totp/setup": "totp_setup", "/v2/auth/totp/enable": "totp_enable", "/v2/auth/totp/disable": "totp_disable",
}

// operationNamer is a mounted surface whose auth operations are counted like v2's: route (below its
// prefix) → operation name.
type operationNamer interface {
	Operations() map[string]string
}

// observe records each request's route, status and latency, and the outcome of auth operations by
// catalogue code, computed from the same mapping the error handler answers with. It answers the
// error itself, so what it counts is what the client got.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	m := s.cfg.Metrics
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		outcome := "ok"
		if err != nil {
			outcome = Classify(err).Code
			if outcome == "login_throttled" {
				m.Throttled("account")
			}
			// Answered here, so the status counted is the one sent: a surface answers some errors
			// with statuses of its own (Devii's 403 for bad credentials).
			c.Error(err)
		}
		m.Request(route, c.Request().Method, c.Response().Status, time.Since(start))
		if op, ok := s.ops[route]; ok {
			m.Outcome(op, outcome)
		}
		return nil
	}
}
