package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/seal"
)

const (
	minSecretLength   = 32
	maxPasswordLength = 1024
)

// Validate reports every invalid key at once, joined; each is a *KeyError.
func (c Config) Validate() error {
	var p problems

	if err := checkListenAddr(c.Server.Addr); err != nil {
		p.add("server.addr", "%v", err)
	}
	if _, err := c.Server.TrustedProxyPrefixes(); err != nil {
		p.add("server.trusted_proxies", "%v", err)
	}
	p.positive("server.request_timeout", c.Server.RequestTimeout)
	p.positive("server.shutdown_timeout", c.Server.ShutdownTimeout)
	if c.Server.PprofAddr != "" {
		// Profiles expose internals: only ever on a loopback address.
		host, _, err := net.SplitHostPort(c.Server.PprofAddr)
		ip := net.ParseIP(host)
		if err != nil || !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			p.add("server.pprof_addr", "must be a loopback host:port such as 127.0.0.1:6060")
		}
	}

	if c.Server.InternalAddr != "" {
		if err := checkListenAddr(c.Server.InternalAddr); err != nil {
			p.add("server.internal_addr", "%v", err)
		} else if c.Server.InternalAddr == c.Server.Addr {
			p.add("server.internal_addr", "must differ from server.addr")
		}
	}

	p.notNegative("server.cors.max_age", c.Server.CORS.MaxAge)
	if c.Server.CORS.MaxAge > 24*time.Hour {
		// Browsers cap it lower anyway (Chromium at 2 h, Firefox at 24 h).
		p.add("server.cors.max_age", "%v is over 24h", c.Server.CORS.MaxAge)
	}

	if err := checkDatabaseURL(c.Database.URL); err != nil {
		p.add("database.url", "%v", err)
	}
	p.atLeast("database.max_open_conns", c.Database.MaxOpenConns, 0)
	p.atLeast("database.max_idle_conns", c.Database.MaxIdleConns, 0)
	p.notNegative("database.conn_max_lifetime", c.Database.ConnMaxLifetime)
	p.atLeast("database.batches_in_flight", c.Database.BatchesInFlight, 0)
	p.atLeast("database.batch_max", c.Database.BatchMax, 0)
	if c.Database.PgBouncer && strings.HasPrefix(c.Database.URL, "sqlite:") {
		p.add("database.pgbouncer", "applies to postgres:// URLs only")
	}

	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "json", "text")

	p.oneOf("mail.driver", c.Mail.Driver, "log", "smtp")
	if _, err := mail.ParseAddress(c.Mail.From); err != nil {
		p.add("mail.from", "not an address such as \"Latch <no-reply@example.com>\": %v", err)
	}
	if n := utf8.RuneCountInString(c.Mail.AppName); strings.TrimSpace(c.Mail.AppName) == "" || n > 200 ||
		strings.IndexFunc(c.Mail.AppName, unicode.IsControl) >= 0 {
		p.add("mail.app_name", "must be 1 to 200 printable characters")
	}
	if c.Mail.Driver == "smtp" && strings.TrimSpace(c.Mail.SMTP.Host) == "" {
		p.add("mail.smtp.host", "required when mail.driver is smtp")
	}
	if c.Mail.SMTP.Port < 1 || c.Mail.SMTP.Port > 65535 {
		p.add("mail.smtp.port", "%d out of range (want 1 to 65535)", c.Mail.SMTP.Port)
	}
	p.oneOf("mail.smtp.tls", c.Mail.SMTP.TLS, "starttls", "tls", "none")
	p.positive("mail.smtp.connect_timeout", c.Mail.SMTP.ConnectTimeout)
	p.positive("mail.smtp.send_timeout", c.Mail.SMTP.SendTimeout)

	p.positive("codes.ttl", c.Codes.TTL)
	p.atLeast("codes.max_attempts", c.Codes.MaxAttempts, 1)
	p.notNegative("codes.resend_cooldown", c.Codes.ResendCooldown)
	p.atLeast("codes.max_per_hour", c.Codes.MaxPerHour, 1)
	p.atLeast("codes.notices_per_hour", c.Codes.NoticesPerHour, 1)
	p.positive("codes.invitation_ttl", c.Codes.InvitationTTL)

	p.required("tokens.issuer", c.Tokens.Issuer)
	p.required("tokens.audience", c.Tokens.Audience)
	p.oneOf("tokens.algorithm", c.Tokens.Algorithm, "ES256", "EdDSA", "RS256", "HS256")
	p.positive("tokens.access_ttl", c.Tokens.AccessTTL)
	// The idle lifetime may exceed the absolute one: the absolute limit simply caps it.
	p.positive("tokens.refresh_idle_ttl", c.Tokens.RefreshIdleTTL)
	p.positive("tokens.session_max_age", c.Tokens.SessionMaxAge)
	p.notNegative("tokens.refresh_reuse_grace", c.Tokens.RefreshReuseGrace)

	p.secret("secrets.code_hmac_key", c.Secrets.CodeHMACKey)
	p.secret("secrets.refresh_key", c.Secrets.RefreshKey)
	if _, err := c.Secrets.TOTPKeys(); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			p = append(p, ke)
		}
	}
	if strings.TrimSpace(c.TOTP.Issuer) == "" || strings.Contains(c.TOTP.Issuer, ":") {
		p.add("totp.issuer", "must be a non-empty name without a colon")
	}
	if c.Secrets.EncryptionKey != "" {
		if _, err := seal.ParseSecret(c.Secrets.EncryptionKey); err != nil {
			p.add("secrets.encryption_key", "%v", err) // seal's messages never quote the secret
		}
		if c.Secrets.EncryptionKeyFile != "" {
			p.add("secrets.encryption_key_file", "set either secrets.encryption_key or secrets.encryption_key_file, not both")
		}
	}

	p.atLeast("password.min_length", c.Password.MinLength, 1)
	if c.Password.MaxLength < c.Password.MinLength {
		p.add("password.max_length", "%d is below password.min_length %d", c.Password.MaxLength, c.Password.MinLength)
	} else if c.Password.MaxLength > maxPasswordLength {
		p.add("password.max_length", "%d is above %d", c.Password.MaxLength, maxPasswordLength)
	}
	// Argon2 needs at least 8 KiB of memory per lane.
	if c.Password.Argon2Memory < 8*uint32(max(c.Password.Argon2Parallelism, 1)) {
		p.add("password.argon2_memory_kib", "%d is below 8 KiB per lane of password.argon2_parallelism", c.Password.Argon2Memory)
	}
	if c.Password.Argon2Iterations < 1 {
		p.add("password.argon2_iterations", "must be at least 1")
	}
	if c.Password.Argon2Parallelism < 1 {
		p.add("password.argon2_parallelism", "must be at least 1")
	}
	p.atLeast("password.max_concurrent", c.Password.MaxConcurrent, 0)
	p.positive("password.queue_timeout", c.Password.QueueTimeout)

	p.atLeast("ratelimit.ip_per_minute", c.RateLimit.IPPerMinute, 0)
	if c.RateLimit.IPPerMinute > 0 {
		// A bucket that holds nothing would refuse every request.
		p.atLeast("ratelimit.ip_burst", c.RateLimit.IPBurst, 1)
	} else {
		p.atLeast("ratelimit.ip_burst", c.RateLimit.IPBurst, 0)
	}
	p.atLeast("ratelimit.free_failures", c.RateLimit.FreeFailures, 0)
	p.notNegative("ratelimit.base_delay", c.RateLimit.BaseDelay)
	if c.RateLimit.MaxDelay < c.RateLimit.BaseDelay {
		p.add("ratelimit.max_delay", "%v is below ratelimit.base_delay %v", c.RateLimit.MaxDelay, c.RateLimit.BaseDelay)
	}
	p.atLeast("ratelimit.account_ceiling", c.RateLimit.AccountCeiling, 0)

	// The other default_tenant keys are checked by the same rules as every tenant's, when the service
	// starts (app.New names the key).
	p.oneOf("default_tenant.second_step", c.DefaultTenant.SecondStep, "email_code", "off")
	if !c.DefaultTenant.Routes.isObject() {
		p.add("default_tenant.routes", "must be a JSON object, such as {} or {\"base\": \"https://api.example.com/\"}")
	}
	if err := checkPrefix(c.Surfaces.Devii.Prefix); err != nil {
		p.add("surfaces.devii.prefix", "%v", err)
	}
	if err := checkPrefix(c.Surfaces.Directus.Prefix); err != nil {
		p.add("surfaces.directus.prefix", "%v", err)
	} else if d := c.Surfaces.Directus.Prefix; d == c.Surfaces.Devii.Prefix || strings.HasPrefix(d, c.Surfaces.Devii.Prefix+"/") ||
		strings.HasPrefix(c.Surfaces.Devii.Prefix, d+"/") {
		p.add("surfaces.directus.prefix", "%q overlaps surfaces.devii.prefix %q", d, c.Surfaces.Devii.Prefix)
	}

	p.atLeast("graphql.max_depth", c.GraphQL.MaxDepth, 2)
	p.atLeast("graphql.max_complexity", c.GraphQL.MaxComplexity, 1)
	p.atLeast("graphql.max_tokens", c.GraphQL.MaxTokens, 100)
	p.atLeast("graphql.max_batch", c.GraphQL.MaxBatch, 1)
	p.oneOf("admin.listener", c.Admin.Listener, "auto", "public", "internal", "both")
	if (c.Admin.Listener == "internal" || c.Admin.Listener == "both") && c.Server.InternalAddr == "" {
		p.add("admin.listener", "%s needs server.internal_addr", c.Admin.Listener)
	}

	p.positive("retention.interval", c.Retention.Interval)
	p.positive("retention.events", c.Retention.Events)
	p.positive("retention.sessions", c.Retention.Sessions)
	p.positive("retention.codes", c.Retention.Codes)
	p.positive("retention.login_failures", c.Retention.LoginFailures)
	if c.Retention.Outbox < time.Hour {
		p.add("retention.outbox", "%v is below 1h, the window the hourly code caps count", c.Retention.Outbox)
	}

	names := map[string]int{}
	for i, w := range c.Webhooks {
		checkWebhook(&p, fmt.Sprintf("webhooks[%d]", i), w)
		name := w.EndpointName()
		if j, dup := names[name]; dup {
			p.add(fmt.Sprintf("webhooks[%d].name", i), "%q is also the name of webhooks[%d]; give each endpoint its own name", name, j)
		}
		names[name] = i
	}

	return errors.Join(p...)
}

// Bounds of a webhook endpoint's settings: an attempt holds a worker slot and a lease for its
// timeout, and a name is shown in the admin view.
const (
	maxWebhookTimeout = time.Minute
	maxWebhookName    = 100
)

func checkWebhook(p *problems, key string, w Webhook) {
	u, err := url.Parse(w.URL)
	switch {
	case strings.TrimSpace(w.URL) == "":
		p.add(key+".url", "must not be empty (want an http:// or https:// URL)")
	case err != nil:
		p.add(key+".url", "not a URL (want one such as https://example.com/hooks/latch)")
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(key+".url", "scheme %q is not http or https (want a URL such as https://example.com/hooks/latch)", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		p.add(key+".url", "has no host (want a URL such as https://example.com/hooks/latch)")
	}
	if strings.TrimSpace(w.Secret) == "" {
		p.add(key+".secret", "must not be empty: it signs every delivery (at least %d characters, e.g. from `openssl rand -hex 32`)", minSecretLength)
	} else {
		p.secretMin(key+".secret", w.Secret)
	}
	if n := w.EndpointName(); n != "" && (utf8.RuneCountInString(n) > maxWebhookName || !printableName(n)) {
		p.add(key+".name", "must be at most %d printable characters", maxWebhookName)
	}
	if len(w.Events) == 0 {
		p.add(key+".events", "must list at least one event type (or \"*\" for all): %s", strings.Join(auth.WebhookTypes(), ", "))
	}
	known := auth.WebhookTypes()
	for _, ev := range w.Events {
		if ev == "*" || slices.Contains(known, ev) {
			continue
		}
		best, dist := "", 4
		for _, k := range known {
			if d := editDistance(ev, k); d < dist {
				best, dist = k, d
			}
		}
		if best != "" {
			p.add(key+".events", "unknown event type %q (did you mean %q?)", ev, best)
		} else {
			p.add(key+".events", "unknown event type %q (want one of %s, or \"*\")", ev, strings.Join(known, ", "))
		}
	}
	p.positive(key+".timeout", w.Timeout)
	if w.Timeout > maxWebhookTimeout {
		p.add(key+".timeout", "%v is above %v", w.Timeout, maxWebhookTimeout)
	}
	p.atLeast(key+".max_attempts", w.MaxAttempts, 1)
}

func printableName(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (j JSONObject) isObject() bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(j), &m) == nil && m != nil
}

// reservedPrefixes belong to v2 and the tenant prefix; a surface cannot be mounted over them.
var reservedPrefixes = []string{"/v2", "/t", "/.well-known", "/healthz", "/readyz", "/metrics"}

// checkPrefix accepts a path such as /devii: a leading slash, segments of letters, digits, '-', '_'
// or '.', no trailing slash.
func checkPrefix(prefix string) error {
	if len(prefix) < 2 || prefix[0] != '/' || strings.HasSuffix(prefix, "/") || strings.Contains(prefix, "//") {
		return fmt.Errorf("%q is not a path such as /devii (a leading slash, no trailing one)", prefix)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-_.", r)) {
			return fmt.Errorf("%q holds %q; use letters, digits, '-', '_', '.' and '/'", prefix, r)
		}
	}
	for _, r := range reservedPrefixes {
		if prefix == r || strings.HasPrefix(prefix, r+"/") {
			return fmt.Errorf("%q is under %s, which Latch serves itself", prefix, r)
		}
	}
	return nil
}

// TOTPKeys parses secrets.totp_key and secrets.totp_previous_key into seal secrets, current first; nil
// when none is set (a generated secret is used). Errors are *KeyError and never quote the secret.
func (s Secrets) TOTPKeys() ([]seal.Secret, error) {
	if s.TOTPKey == "" {
		if s.TOTPPreviousKey != "" {
			return nil, &KeyError{Key: "secrets.totp_previous_key", Err: errors.New("set only together with secrets.totp_key")}
		}
		return nil, nil
	}
	var out []seal.Secret
	for _, k := range []struct{ key, value string }{{"secrets.totp_key", s.TOTPKey}, {"secrets.totp_previous_key", s.TOTPPreviousKey}} {
		if k.value == "" {
			continue
		}
		sec, err := seal.ParseSecret(k.value)
		if err != nil {
			return nil, &KeyError{Key: k.key, Err: errors.New(`want "[v<version>:]<at least 32 characters>"`)}
		}
		out = append(out, sec)
	}
	if len(out) == 2 && out[0].Version == out[1].Version {
		return nil, &KeyError{Key: "secrets.totp_previous_key", Err: errors.New("must have another version than secrets.totp_key (write them as v1:..., v2:...)")}
	}
	return out, nil
}

// TrustedProxyPrefixes parses server.trusted_proxies; a bare address stands for itself alone
// (/32 or /128).
func (s Server) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for _, entry := range s.TrustedProxies {
		entry = strings.TrimSpace(entry)
		if prefix, err := netip.ParsePrefix(entry); err == nil {
			prefixes = append(prefixes, prefix.Masked())
			continue
		}
		addr, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", entry)
		}
		addr = addr.WithZone("")
		prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return prefixes, nil
}

func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (such as :10952): %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// checkDatabaseURL never quotes the URL, which may carry a password.
func checkDatabaseURL(raw string) error {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return errors.New("want a URL starting postgres://, postgresql:// or sqlite://")
	}
	switch scheme {
	case "sqlite":
		// Not parsed as a URL: paths like ":memory:" or "file.db?_pragma=..." are the driver's business.
		if rest == "" {
			return errors.New("sqlite:// needs a file path, e.g. sqlite://latch.db")
		}
	case "postgres", "postgresql":
		// url.Parse's own message is not passed on: it can quote part of a password, for instance
		// when an unescaped "/" in it makes the rest look like a port.
		if _, err := url.Parse(raw); err != nil {
			return errors.New("unparsable URL (are special characters in the password percent-encoded?)")
		}
	default:
		return fmt.Errorf("unsupported scheme %q (want postgres, postgresql or sqlite)", scheme)
	}
	return nil
}

type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
}

func (p *problems) oneOf(key, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	p.add(key, "unknown value %q (want %s)", got, orList(allowed))
}

func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "%v must be above zero", d)
	}
}

func (p *problems) notNegative(key string, d time.Duration) {
	if d < 0 {
		p.add(key, "%v must not be negative", d)
	}
}

func (p *problems) atLeast(key string, n, least int) {
	if n < least {
		p.add(key, "%d must be at least %d", n, least)
	}
}

func (p *problems) required(key, s string) {
	if strings.TrimSpace(s) == "" {
		p.add(key, "must not be empty")
	}
}

// secretMin checks a required secret's length, never echoing it.
func (p *problems) secretMin(key, s string) {
	if utf8.RuneCountInString(s) < minSecretLength {
		p.add(key, "too short (want at least %d characters, e.g. from `openssl rand -hex 32`)", minSecretLength)
	}
}

// secret checks length only and never echoes the value.
func (p *problems) secret(key, s string) {
	if s != "" && utf8.RuneCountInString(s) < minSecretLength {
		p.add(key, "too short (want at least %d characters, or leave empty to generate one)", minSecretLength)
	}
}

func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
