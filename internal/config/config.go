// Package config owns Latch's settings: their defaults, loading them from a YAML file with LATCH_*
// environment overrides, and checking them before anything starts.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"time"
)

// Config is the whole configuration. Each field's yaml tag is its key; the environment variable for a
// key is derived from the same tags, so the two cannot drift. Fields tagged secret:"true" are kept out
// of logs and error messages.
type Config struct {
	Server    Server    `yaml:"server"`
	Database  Database  `yaml:"database"`
	Log       Log       `yaml:"log"`
	Mail      Mail      `yaml:"mail"`
	Codes     Codes     `yaml:"codes"`
	Tokens    Tokens    `yaml:"tokens"`
	Secrets   Secrets   `yaml:"secrets"`
	Password  Password  `yaml:"password"`
	RateLimit RateLimit `yaml:"ratelimit"`
	TOTP      TOTP      `yaml:"totp"`
	Retention Retention `yaml:"retention"`
	Sandbox   Sandbox   `yaml:"sandbox"`
	// DefaultTenant is the settings of the default tenant, which serves every request that names no
	// tenant; other tenants keep theirs in the database.
	DefaultTenant DefaultTenant `yaml:"default_tenant"`
	Surfaces      Surfaces      `yaml:"surfaces"`
	GraphQL       GraphQL       `yaml:"graphql"`
	Admin         Admin         `yaml:"admin"`
	// Webhooks are the endpoints told of security events (SPEC 13). Each item is set in the file, or
	// by LATCH_WEBHOOKS_<n>_<KEY> (LATCH_WEBHOOKS_0_SECRET ...), which creates or overrides item n.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one endpoint receiving webhooks.
type Webhook struct {
	// Name identifies the endpoint in the deliveries and the admin view; default: the URL without its
	// query. Renaming an endpoint orphans its queued deliveries (they die, and can be retried).
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Secret signs every delivery (HMAC-SHA256); the receiver checks it.
	Secret string `yaml:"secret" secret:"true"`
	// Events are the public event types sent, or "*" for all.
	Events []string `yaml:"events"`
	// Timeout bounds one attempt, from connecting to the answer.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how many attempts a delivery gets before it is dead.
	MaxAttempts int `yaml:"max_attempts"`
}

// DefaultWebhook is an endpoint's defaults, which an item of webhooks starts from.
func DefaultWebhook() Webhook {
	return Webhook{Events: []string{}, Timeout: 10 * time.Second, MaxAttempts: 12}
}

// EndpointName is the name, or the URL without query and credentials when none is set.
func (w Webhook) EndpointName() string {
	if w.Name != "" {
		return w.Name
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		return w.URL
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

type Server struct {
	Addr string `yaml:"addr"`
	// TrustedProxies are CIDRs (a bare IP means that one address) whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RequestTimeout is every request's deadline, carried into its queries: a database that does not
	// answer within it answers 503 unavailable instead of holding the request.
	RequestTimeout  time.Duration `yaml:"request_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	PprofAddr       string        `yaml:"pprof_addr"`
	// InternalAddr, when set, is a second listener for what operators and their tools use (/metrics);
	// those routes then leave the public listener.
	InternalAddr string `yaml:"internal_addr"`
	CORS         CORS   `yaml:"cors"`
}

// CORS lets browser apps on other origins call Latch. An origin is allowed when it is listed here or
// in the settings of the tenant a request names in its path (/t/{id}/...; the default tenant's
// without the prefix).
type CORS struct {
	// AllowedOrigins are origins (scheme://host[:port]) allowed on every tenant.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowCredentials lets allowed origins send cookies (the refresh cookie of mode "cookie").
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may keep a preflight's answer.
	MaxAge time.Duration `yaml:"max_age"`
	// Admin extends CORS to the admin API: off, its keys are for operators' backends, never a page.
	Admin bool `yaml:"admin"`
}

type Database struct {
	// URL is postgres://, postgresql:// or sqlite://<path>. It may hold a password: Redacted masks it.
	URL             string        `yaml:"url"`
	AutoMigrate     bool          `yaml:"auto_migrate"`
	MaxOpenConns    int           `yaml:"max_open_conns"`
	MaxIdleConns    int           `yaml:"max_idle_conns"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
	// PgBouncer is true when URL names a pooler in transaction mode (PgBouncer before 1.21, or
	// 1.21+ without max_prepared_statements), which cannot keep a client's named prepared statements.
	PgBouncer bool `yaml:"pgbouncer"`
	// BatchesInFlight and BatchMax group concurrent refresh rotations (and user lookups) on Postgres:
	// at most BatchesInFlight groups run at once, each one statement and one commit for up to
	// BatchMax requests that arrived while the others ran. BatchMax 1 sends every request alone.
	BatchesInFlight int `yaml:"batches_in_flight"`
	BatchMax        int `yaml:"batch_max"`
}

type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type Mail struct {
	Driver string `yaml:"driver"`
	From   string `yaml:"from"`
	// AppName is the product name emails speak as, unless a tenant names its own.
	AppName string `yaml:"app_name"`
	// TemplatesDir overrides embedded templates file by file; "" means embedded templates only.
	TemplatesDir string `yaml:"templates_dir"`
	SMTP         SMTP   `yaml:"smtp"`
}

type SMTP struct {
	Host           string        `yaml:"host"`
	Port           int           `yaml:"port"`
	Username       string        `yaml:"username"`
	Password       string        `yaml:"password" secret:"true"`
	TLS            string        `yaml:"tls"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	SendTimeout    time.Duration `yaml:"send_timeout"`
}

type Codes struct {
	TTL            time.Duration `yaml:"ttl"`
	MaxAttempts    int           `yaml:"max_attempts"`
	ResendCooldown time.Duration `yaml:"resend_cooldown"`
	// MaxPerHour counts the code emails of one purpose (signup, login, reset) per user.
	MaxPerHour int `yaml:"max_per_hour"`
	// NoticesPerHour bounds the already-registered notices per user, which a stranger can trigger.
	NoticesPerHour int `yaml:"notices_per_hour"`
	// InvitationTTL is how long the sign-up code of an admin's invitation stays valid.
	InvitationTTL time.Duration `yaml:"invitation_ttl"`
}

type Tokens struct {
	Issuer            string        `yaml:"issuer"`
	Audience          string        `yaml:"audience"`
	Algorithm         string        `yaml:"algorithm"`
	AccessTTL         time.Duration `yaml:"access_ttl"`
	RefreshIdleTTL    time.Duration `yaml:"refresh_idle_ttl"`
	SessionMaxAge     time.Duration `yaml:"session_max_age"`
	RefreshReuseGrace time.Duration `yaml:"refresh_reuse_grace"`
	AllowQueryParam   bool          `yaml:"allow_query_param"`
	// SigningKeyFile is a PEM private key (for HS256, a file holding the raw secret); "" means a key
	// generated on first start and kept in the database.
	SigningKeyFile string `yaml:"signing_key_file"`
	// CookieSecure is false only for plain-http local testing.
	CookieSecure bool `yaml:"cookie_secure"`
}

// Secrets left empty are generated on first start and kept in the database, so every instance on
// that database agrees; they are kept there sealed under the key-encryption key.
type Secrets struct {
	CodeHMACKey string `yaml:"code_hmac_key" secret:"true"`
	RefreshKey  string `yaml:"refresh_key" secret:"true"`
	// TOTPKey seals TOTP secrets at rest (AES-256-GCM): "[v<version>:]<at least 32 characters>".
	// TOTPPreviousKey is the version it replaced, kept so secrets sealed under it still open.
	TOTPKey         string `yaml:"totp_key" secret:"true"`
	TOTPPreviousKey string `yaml:"totp_previous_key" secret:"true"`
	// EncryptionKey is the key-encryption key, "[v<N>:]material" (at least 32 bytes): it seals what the
	// database keeps that is worth stealing (signing keys and secrets generated there, queued codes).
	EncryptionKey string `yaml:"encryption_key" secret:"true"`
	// EncryptionKeyFile holds the key-encryption key instead, one version a line, newest first (older
	// ones still open what they sealed). A file that does not exist is created with a new key.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
}

type Password struct {
	MinLength         int    `yaml:"min_length"`
	MaxLength         int    `yaml:"max_length"`
	Argon2Memory      uint32 `yaml:"argon2_memory_kib"`
	Argon2Iterations  uint32 `yaml:"argon2_iterations"`
	Argon2Parallelism uint8  `yaml:"argon2_parallelism"`
	// MaxConcurrent bounds simultaneous hashes so a burst cannot exhaust memory; 0 means one per CPU.
	MaxConcurrent int           `yaml:"max_concurrent"`
	QueueTimeout  time.Duration `yaml:"queue_timeout"`
}

type RateLimit struct {
	// IPPerMinute of 0 turns the per-IP bucket off.
	IPPerMinute  int           `yaml:"ip_per_minute"`
	IPBurst      int           `yaml:"ip_burst"`
	FreeFailures int           `yaml:"free_failures"`
	BaseDelay    time.Duration `yaml:"base_delay"`
	MaxDelay     time.Duration `yaml:"max_delay"`
	// AccountCeiling counts failures per account across all IPs before the account-wide wait applies,
	// so a stranger on another IP cannot lock the owner out with the per-(account, IP) wait alone.
	AccountCeiling int `yaml:"account_ceiling"`
}

type TOTP struct {
	// Issuer is the name authenticator apps list the account under.
	Issuer string `yaml:"issuer"`
}

// Retention bounds how long rows that no longer serve any rule are kept; every instance purges them
// every Interval, in small batches.
type Retention struct {
	Interval time.Duration `yaml:"interval"`
	Events   time.Duration `yaml:"events"`
	// Sessions keeps ended sessions (revoked, or past their absolute end) and their refresh tokens
	// this long after the end. A live session keeps every token of its chain.
	Sessions      time.Duration `yaml:"sessions"`
	Codes         time.Duration `yaml:"codes"`
	LoginFailures time.Duration `yaml:"login_failures"`
	// Outbox must be at least the hour the code caps count.
	Outbox time.Duration `yaml:"outbox"`
}

type Sandbox struct {
	Enabled bool `yaml:"enabled"`
	// AllowRemote lets clients other than loopback read the inbox; off, it answers only this machine.
	AllowRemote bool `yaml:"allow_remote"`
}

// JSONObject is a JSON object held as its text. In the file it may be written as a YAML mapping or as
// a string of JSON; in the environment it is JSON.
type JSONObject string

type DefaultTenant struct {
	SecondStep      string     `yaml:"second_step"`
	RefreshRotation bool       `yaml:"refresh_rotation"`
	AppName         string     `yaml:"app_name"`
	MailFrom        string     `yaml:"mail_from"`
	Locale          string     `yaml:"locale"`
	AllowedOrigins  []string   `yaml:"allowed_origins"`
	Routes          JSONObject `yaml:"routes"`
	Issuer          string     `yaml:"issuer"`
}

// Surfaces are the compatibility APIs served beside v2, each with its switch and path prefix.
type Surfaces struct {
	Devii    Surface `yaml:"devii"`
	Directus Surface `yaml:"directus"`
}

type Surface struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"`
}

// GraphQL is the Saleor / django-graphql-jwt surface at /graphql. The limits bound what one request
// can cost before anything runs.
type GraphQL struct {
	Enabled       bool `yaml:"enabled"`
	Explorer      bool `yaml:"explorer"`
	Introspection bool `yaml:"introspection"`
	MaxDepth      int  `yaml:"max_depth"`
	MaxComplexity int  `yaml:"max_complexity"`
	MaxTokens     int  `yaml:"max_tokens"`
	MaxBatch      int  `yaml:"max_batch"`
}

// Admin is the admin API (/v2/admin), reached with admin keys.
type Admin struct {
	Enabled bool `yaml:"enabled"`
	// Listener is where it is served: public (server.addr), internal (server.internal_addr), both, or
	// auto: internal when server.internal_addr is set, else public.
	Listener string `yaml:"listener"`
}

// AdminListeners tells on which listeners the admin API is served.
func (c Config) AdminListeners() (public, internal bool) {
	if !c.Admin.Enabled {
		return false, false
	}
	switch c.Admin.Listener {
	case "public":
		return true, false
	case "internal":
		return false, true
	case "both":
		return true, true
	}
	return c.Server.InternalAddr == "", c.Server.InternalAddr != ""
}

// Default returns the built-in configuration; config.yaml at the repository root mirrors it.
func Default() Config {
	return Config{
		Server: Server{
			Addr:            ":10952",
			TrustedProxies:  []string{},
			RequestTimeout:  10 * time.Second,
			ShutdownTimeout: 15 * time.Second,
			PprofAddr:       "",
			InternalAddr:    "",
			CORS:            CORS{AllowedOrigins: []string{}, MaxAge: 10 * time.Minute},
		},
		Database: Database{
			URL:             "sqlite://latch.db",
			AutoMigrate:     true,
			MaxOpenConns:    16,
			MaxIdleConns:    16,
			ConnMaxLifetime: 30 * time.Minute,
			BatchesInFlight: 8,
			BatchMax:        64,
		},
		Log: Log{Level: "info", Format: "json"},
		Mail: Mail{
			Driver:  "log",
			From:    "Latch <no-reply@localhost>",
			AppName: "Latch",
			SMTP: SMTP{
				Host:           "localhost",
				Port:           587,
				TLS:            "starttls",
				ConnectTimeout: 10 * time.Second,
				SendTimeout:    15 * time.Second,
			},
		},
		Codes: Codes{
			TTL:            10 * time.Minute,
			MaxAttempts:    5,
			ResendCooldown: 60 * time.Second,
			MaxPerHour:     10,
			NoticesPerHour: 3,
			InvitationTTL:  72 * time.Hour,
		},
		Tokens: Tokens{
			Issuer:            "latch",
			Audience:          "latch",
			Algorithm:         "ES256",
			AccessTTL:         15 * time.Minute,
			RefreshIdleTTL:    168 * time.Hour,
			SessionMaxAge:     720 * time.Hour,
			RefreshReuseGrace: 10 * time.Second,
			CookieSecure:      true,
		},
		Password: Password{
			MinLength:         8,
			MaxLength:         256,
			Argon2Memory:      19456, // OWASP: m=19 MiB, t=2, p=1
			Argon2Iterations:  2,
			Argon2Parallelism: 1,
			QueueTimeout:      5 * time.Second,
		},
		RateLimit: RateLimit{
			IPPerMinute:    60,
			IPBurst:        30,
			FreeFailures:   5,
			BaseDelay:      30 * time.Second,
			MaxDelay:       15 * time.Minute,
			AccountCeiling: 100,
		},
		DefaultTenant: DefaultTenant{
			SecondStep:      "email_code",
			RefreshRotation: true,
			Locale:          "en",
			AllowedOrigins:  []string{},
			Routes:          "{}",
		},
		TOTP: TOTP{Issuer: "Latch"},
		Surfaces: Surfaces{
			Devii:    Surface{Enabled: true, Prefix: "/devii"},
			Directus: Surface{Enabled: true, Prefix: "/directus"},
		},
		GraphQL: GraphQL{
			Enabled:       true,
			Explorer:      true,
			Introspection: true,
			MaxDepth:      15,
			MaxComplexity: 250,
			MaxTokens:     5000,
			MaxBatch:      10,
		},
		Retention: Retention{
			Interval:      10 * time.Minute,
			Events:        90 * 24 * time.Hour,
			Sessions:      7 * 24 * time.Hour,
			Codes:         24 * time.Hour,
			LoginFailures: 24 * time.Hour,
			Outbox:        24 * time.Hour,
		},
		Admin:    Admin{Enabled: true, Listener: "auto"},
		Webhooks: []Webhook{},
	}
}

const redactedMark = "[redacted]"

// Redacted returns a copy safe to log: set secrets become "[redacted]" and a password inside
// database.url is masked.
func (c Config) Redacted() Config {
	c.Server.TrustedProxies = slices.Clone(c.Server.TrustedProxies)
	c.Server.CORS.AllowedOrigins = slices.Clone(c.Server.CORS.AllowedOrigins)
	c.DefaultTenant.AllowedOrigins = slices.Clone(c.DefaultTenant.AllowedOrigins)
	c.Webhooks = slices.Clone(c.Webhooks)
	for i := range c.Webhooks {
		if c.Webhooks[i].Secret != "" {
			c.Webhooks[i].Secret = redactedMark
		}
		c.Webhooks[i].URL = redactHookURL(c.Webhooks[i].URL)
	}
	root := reflect.ValueOf(&c).Elem()
	for _, f := range leafFields() {
		if !f.secret {
			continue
		}
		v := root.FieldByIndex(f.index)
		if v.String() != "" {
			v.SetString(redactedMark)
		}
	}
	c.Database.URL = redactURL(c.Database.URL)
	return c
}

// redactHookURL masks a webhook URL's password and its whole query, where receivers often take a
// token.
func redactHookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactedMark
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return u.Redacted()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Cannot tell where a password would be, so show nothing.
		return redactedMark
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// ErrUnknownKey is wrapped by the KeyError for a key in the file that Latch does not know.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is a problem with one configuration key. Its message never holds a secret's value.
type KeyError struct {
	Key    string // dotted yaml path, e.g. "mail.smtp.port"
	Source string // where the value came from ("config.yaml:12", "LATCH_MAIL_SMTP_PORT"); "" when checked after loading
	Err    error
}

func (e *KeyError) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("config: %s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("config: %s (%s): %v", e.Key, e.Source, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }
