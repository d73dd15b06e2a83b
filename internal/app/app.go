// Package app wires one Latch instance from its configuration: what `latch serve` runs and what the
// end-to-end tests drive.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/graphql"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/metrics"
	"github.com/latch-auth/latch/internal/password"
	"github.com/latch-auth/latch/internal/seal"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/surface/devii"
	"github.com/latch-auth/latch/internal/surface/directus"
	"github.com/latch-auth/latch/internal/token"
	"github.com/latch-auth/latch/internal/webhook"
)

// App is one wired Latch instance. Its parts are exported for the end-to-end tests, which reach
// behind the HTTP surface to move clocks, read rows and tune the outbox worker.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   *store.Store
	Tenants *auth.Directory
	Keys    *auth.Keys
	Service *auth.Service
	Hasher  *password.Hasher
	Worker  *mail.Worker
	// Webhooks delivers the webhooks (runs with no endpoint too, marking events done).
	Webhooks *webhook.Worker
	Metrics  *metrics.Metrics
	Inbox    *mail.Inbox
	server   *httpapi.Server
}

// OpenStore connects and, when asked, migrates.
func OpenStore(ctx context.Context, cfg config.Config, now func() time.Time, migrate bool) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxOpenConns: cfg.Database.MaxOpenConns,
		MaxIdleConns: cfg.Database.MaxIdleConns, ConnMaxLifetime: cfg.Database.ConnMaxLifetime, PgBouncer: cfg.Database.PgBouncer,
		BatchesInFlight: cfg.Database.BatchesInFlight, BatchMax: cfg.Database.BatchMax,
		LockTimeout: cfg.Server.RequestTimeout})
	if err != nil {
		return nil, err
	}
	st.Now = now
	if migrate {
		if _, err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// OpenSealedStore is OpenStore for what reads or writes values sealed at rest (the service, `latch keys
// rotate`): it takes the key-encryption key and seals what is still in plain.
func OpenSealedStore(ctx context.Context, cfg config.Config, now func() time.Time, migrate bool, log *slog.Logger) (*store.Store, error) {
	kek, err := LoadKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg, now, migrate)
	if err != nil {
		return nil, err
	}
	if err := st.UseKeyring(kek); err != nil {
		st.Close()
		return nil, err
	}
	n, err := st.SealAtRest(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("seal values at rest: %w", err)
	}
	if n > 0 {
		log.Info("sealed values the database kept in plain or under an older key-encryption key", "rows", n)
	}
	return st, nil
}

// TokenConfig is the token issuer's part of the configuration. With tenants set, a token's iss must be
// the issuer of the tenant it names; without, tokens.issuer is the only one (a command that only signs
// keys needs no tenants).
func TokenConfig(cfg config.Config, tenants *auth.Directory) token.Config {
	c := token.Config{Issuer: cfg.Tokens.Issuer, Audience: cfg.Tokens.Audience, AccessTTL: cfg.Tokens.AccessTTL, Alg: cfg.Tokens.Algorithm}
	if tenants != nil {
		c.IssuerOf = tenants.IssuerOf
	}
	return c
}

// NewDirectory resolves tenants for the service and the token verifier. The default tenant's
// settings come from the configuration and follow the same rules as every tenant's; a problem is
// reported under its configuration key.
func NewDirectory(cfg config.Config, st *store.Store, now func() time.Time) (*auth.Directory, error) {
	dt := cfg.DefaultTenant
	d, err := auth.NewDirectory(st, auth.TenantConfig{Issuer: cfg.Tokens.Issuer, CacheFor: auth.DefaultTenantCacheFor,
		Default: auth.TenantSettings{SecondStep: dt.SecondStep, RefreshRotation: dt.RefreshRotation, AppName: dt.AppName,
			MailFrom: dt.MailFrom, Locale: dt.Locale, AllowedOrigins: dt.AllowedOrigins, Routes: json.RawMessage(dt.Routes),
			Issuer: dt.Issuer}}, now)
	var ae *auth.Error
	if errors.As(err, &ae) {
		var problems []error
		for _, f := range ae.Fields {
			problems = append(problems, &config.KeyError{Key: "default_tenant." + auth.FieldName(f.Field, '_'), Err: errors.New(f.Message)})
		}
		return nil, errors.Join(problems...)
	}
	return d, err
}

// NewHasher builds the bounded password hasher the configuration describes.
func NewHasher(cfg config.Config) (*password.Hasher, error) {
	p := password.OWASP()
	p.Memory, p.Iterations, p.Parallelism = cfg.Password.Argon2Memory, cfg.Password.Argon2Iterations, cfg.Password.Argon2Parallelism
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("password.argon2_*: %w", err)
	}
	return password.NewHasher(p, HashSlots(cfg), cfg.Password.QueueTimeout, nil), nil
}

// Option changes how New wires an instance.
type Option func(*options)

type options struct {
	logSync func() error
}

// WithLogSync gives New what makes the log durable (the flush of a buffered log writer): the log mail
// driver calls it before a message counts as sent, so a crash cannot lose a code that was logged.
func WithLogSync(sync func() error) Option { return func(o *options) { o.logSync = sync } }

// New wires every component from the configuration. now is the clock of the whole instance.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time, opts ...Option) (*App, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{Config: cfg, Log: log}
	var err error
	if a.Store, err = OpenSealedStore(ctx, cfg, now, cfg.Database.AutoMigrate, log); err != nil {
		return nil, err
	}
	fail := func(err error) (*App, error) { a.Store.Close(); return nil, err }

	secrets, err := loadSecrets(ctx, cfg, a.Store, log)
	if err != nil {
		return fail(err)
	}
	if a.Tenants, err = NewDirectory(cfg, a.Store, now); err != nil {
		return fail(err)
	}
	if a.Keys, err = LoadKeys(ctx, cfg, a.Store, a.Tenants, now, log); err != nil {
		return fail(err)
	}
	hasher, err := NewHasher(cfg)
	if err != nil {
		return fail(err)
	}
	a.Hasher = hasher
	a.Service = auth.New(auth.Config{
		CodeTTL: cfg.Codes.TTL, CodeMaxAttempts: cfg.Codes.MaxAttempts, ResendCooldown: cfg.Codes.ResendCooldown, CodesPerHour: cfg.Codes.MaxPerHour,
		NoticesPerHour: cfg.Codes.NoticesPerHour, InvitationTTL: cfg.Codes.InvitationTTL,
		AccessTTL: cfg.Tokens.AccessTTL, RefreshIdleTTL: cfg.Tokens.RefreshIdleTTL, SessionMaxAge: cfg.Tokens.SessionMaxAge, ReuseGrace: cfg.Tokens.RefreshReuseGrace,
		PasswordMinLength: cfg.Password.MinLength, PasswordMaxLength: cfg.Password.MaxLength, TOTPIssuer: cfg.TOTP.Issuer,
		Throttle: auth.ThrottleConfig{FreeFailures: cfg.RateLimit.FreeFailures, BaseDelay: cfg.RateLimit.BaseDelay,
			MaxDelay: cfg.RateLimit.MaxDelay, Ceiling: cfg.RateLimit.AccountCeiling},
	}, a.Store, a.Tenants, a.Keys, hasher, secrets, log)
	a.Service.Now = now

	renderer, err := mail.NewRenderer(cfg.Mail.TemplatesDir)
	if err != nil {
		return fail(fmt.Errorf("mail.templates_dir: %w", err))
	}
	renderer.AppName = cfg.Mail.AppName
	var sender mail.Sender
	switch cfg.Mail.Driver {
	case "smtp":
		if sender, err = mail.NewSMTP(mail.SMTPConfig{Host: cfg.Mail.SMTP.Host, Port: cfg.Mail.SMTP.Port,
			Username: cfg.Mail.SMTP.Username, Password: cfg.Mail.SMTP.Password, TLS: cfg.Mail.SMTP.TLS, From: cfg.Mail.From,
			ConnectTimeout: cfg.Mail.SMTP.ConnectTimeout, SendTimeout: cfg.Mail.SMTP.SendTimeout}); err != nil {
			return fail(fmt.Errorf("mail.smtp: %w", err))
		}
	default:
		logDriver := mail.NewLog(log)
		logDriver.Sync = o.logSync
		sender = logDriver
	}
	if cfg.Sandbox.Enabled {
		a.Inbox = mail.NewInbox(sender, 50)
		a.Inbox.Now = now
		sender = a.Inbox
	}

	a.Metrics = metrics.New(a.Store.SQLDB(), func(ctx context.Context) (int64, time.Duration, int64, error) {
		st, err := a.Store.OutboxStats(ctx)
		var age time.Duration
		if st.Oldest != nil {
			age = now().Sub(*st.Oldest)
		}
		return st.Pending, age, st.Dead, err
	})
	hasher.WaitObserver = a.Metrics.HashWait
	for _, b := range a.Store.Batches() {
		a.Metrics.CountBatches(b.Kind, b.Groups, b.Calls)
	}

	a.Worker = mail.NewWorker(a.Store, renderer, sender, log)
	a.Worker.Now = now
	a.Worker.Observe = a.Metrics.MailSend
	// A lease outlasts the longest send, and is renewed while the send runs.
	a.Worker.Lease = max(a.Worker.Lease, 2*cfg.Mail.SMTP.SendTimeout)
	a.Service.OnMailQueued(a.Worker.Wake)

	endpoints := Endpoints(cfg)
	if len(endpoints) > 0 {
		names := make([]string, 0, len(endpoints))
		for _, e := range endpoints {
			names = append(names, e.Name)
		}
		log.Info("webhooks configured", "endpoints", names)
	}
	a.Webhooks = webhook.NewWorker(a.Store, endpoints, log)
	a.Webhooks.Now = now
	a.Webhooks.Observe = a.Metrics.WebhookDelivery
	a.Metrics.Webhooks(func(ctx context.Context) (int64, time.Duration, int64, error) {
		st, err := a.Store.WebhookStats(ctx)
		var age time.Duration
		if st.Oldest != nil {
			age = now().Sub(*st.Oldest)
		}
		return st.Pending, age, st.Dead, err
	})

	proxies, err := cfg.Server.TrustedProxyPrefixes()
	if err != nil {
		return fail(err)
	}
	hc := httpapi.Config{RequestTimeout: cfg.Server.RequestTimeout, TrustedProxies: proxies, AllowQueryParam: cfg.Tokens.AllowQueryParam, CookieSecure: cfg.Tokens.CookieSecure,
		IPPerMinute: cfg.RateLimit.IPPerMinute, IPBurst: cfg.RateLimit.IPBurst, Ready: a.Store.Ping, JWKS: a.Keys.JWKS, Metrics: a.Metrics}
	if a.Inbox != nil {
		hc.Sandbox, hc.SandboxAllowRemote = a.Inbox, cfg.Sandbox.AllowRemote
	}
	for _, o := range cfg.Server.CORS.AllowedOrigins {
		if !auth.ValidOrigin(o) {
			return fail(&config.KeyError{Key: "server.cors.allowed_origins",
				Err: fmt.Errorf("%q is not an origin such as https://app.example.com (scheme, host and port only)", o)})
		}
	}
	c := cfg.Server.CORS
	hc.CORS = httpapi.CORS{AllowedOrigins: c.AllowedOrigins, AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAge, Admin: c.Admin}
	hc.InternalListener = cfg.Server.InternalAddr != ""
	hc.AdminPublic, hc.AdminInternal = cfg.AdminListeners()
	a.server = httpapi.New(hc, a.Service, log)
	if d := cfg.Surfaces.Devii; d.Enabled {
		a.server.Mount(devii.New(a.Service, d.Prefix))
	}
	if g := cfg.GraphQL; g.Enabled {
		a.server.Mount(graphql.New(graphql.Options{AllowQueryParam: cfg.Tokens.AllowQueryParam, Explorer: g.Explorer,
			Introspection: g.Introspection, MaxDepth: g.MaxDepth, MaxComplexity: g.MaxComplexity, MaxTokens: g.MaxTokens,
			MaxBatch: g.MaxBatch}, a.Service, log))
	}
	if d := cfg.Surfaces.Directus; d.Enabled {
		a.server.Mount(directus.New(a.Service, directus.Config{Prefix: d.Prefix, AllowQueryParam: cfg.Tokens.AllowQueryParam, CookieSecure: cfg.Tokens.CookieSecure}))
	}
	return a, nil
}

// Endpoints are the configured webhook endpoints.
func Endpoints(cfg config.Config) []webhook.Endpoint {
	out := make([]webhook.Endpoint, 0, len(cfg.Webhooks))
	for _, w := range cfg.Webhooks {
		out = append(out, webhook.Endpoint{Name: w.EndpointName(), URL: w.URL, Secret: w.Secret, Events: w.Events,
			Timeout: w.Timeout, MaxAttempts: w.MaxAttempts})
	}
	return out
}

// Handler is the HTTP handler to serve.
func (a *App) Handler() http.Handler { return a.server.Handler() }

// InternalHandler is the handler of server.internal_addr (/metrics, and the admin API when
// admin.listener puts it there).
func (a *App) InternalHandler() http.Handler { return a.server.InternalHandler() }

// RunBackground runs the outbox and webhook workers, the key reloader and the retention job until ctx ends; wait
// returns once they have stopped and the service's work after answers is done (stop serving requests
// first).
func (a *App) RunBackground(ctx context.Context) (wait func()) {
	const jobs = 4
	done := make(chan struct{}, jobs)
	go func() { a.Worker.Run(ctx); done <- struct{}{} }()
	go func() { a.Webhooks.Run(ctx); done <- struct{}{} }()
	go func() { a.Keys.Run(ctx, time.Minute); done <- struct{}{} }()
	go func() { a.purge(ctx); done <- struct{}{} }()
	return func() {
		for range jobs {
			<-done
		}
		a.Service.Drain()
	}
}

// purge deletes what the retention allows every retention.interval until ctx ends.
func (a *App) purge(ctx context.Context) {
	r := a.Config.Retention
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, max(r.Interval/2, time.Minute))
		p, err := a.Store.Purge(pctx, store.Retention{Events: r.Events, Sessions: r.Sessions, Codes: r.Codes,
			LoginFailures: r.LoginFailures, Outbox: r.Outbox})
		cancel()
		if err != nil && ctx.Err() == nil {
			a.Log.Warn("retention purge stopped; the next run goes on", "err", err, "deleted", p.Total())
		} else if p.Total() > 0 {
			a.Log.Info("retention purge", "events", p.Events, "sessions", p.Sessions, "codes", p.Codes,
				"login_failures", p.LoginFailures, "outbox", p.Outbox, "webhooks", p.Webhooks)
		}
	}
}

// Close releases the database pool.
func (a *App) Close() error { return a.Store.Close() }

// defaultProcs is the GOMAXPROCS the Go runtime chose (the CPUs, or the container's CPU limit),
// read before serve adds processors for password hashing.
var defaultProcs = runtime.GOMAXPROCS(0)

// HashSlots is how many password hashes may run at once: password.max_concurrent, else one per CPU.
func HashSlots(cfg config.Config) int {
	if cfg.Password.MaxConcurrent > 0 {
		return cfg.Password.MaxConcurrent
	}
	return defaultProcs
}

// loadSecrets takes the configured server secrets, or the ones generated and kept in the database.
func loadSecrets(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger) (auth.Secrets, error) {
	secrets, generated, err := auth.LoadSecrets(ctx, st, []byte(cfg.Secrets.CodeHMACKey), []byte(cfg.Secrets.RefreshKey))
	if err != nil {
		return secrets, err
	}
	totpKeys, err := cfg.Secrets.TOTPKeys()
	if err != nil {
		return secrets, err
	}
	keyring, totpGenerated, err := auth.LoadSealKeyring(ctx, st, auth.SecretTOTP, totpKeys)
	if err != nil {
		return secrets, err
	}
	if secrets.TOTP, err = keyring.For(seal.PurposeTOTP); err != nil {
		return secrets, err
	}
	if totpGenerated {
		generated = append(generated, auth.SecretTOTP)
	}
	for _, name := range generated {
		key := map[string]string{auth.SecretCode: "secrets.code_hmac_key", auth.SecretRefresh: "secrets.refresh_key", auth.SecretTOTP: "secrets.totp_key"}[name]
		log.Warn("secret not configured; using the one stored in the database (production should set it)", "secret", key)
	}
	return secrets, nil
}

// LoadKeys loads the signing keys: the configured key file, or the keys kept in the database. tenants
// may be nil where no token is verified.
func LoadKeys(ctx context.Context, cfg config.Config, st *store.Store, tenants *auth.Directory, now func() time.Time, log *slog.Logger) (*auth.Keys, error) {
	var configured []byte
	if f := cfg.Tokens.SigningKeyFile; f != "" {
		var err error
		if configured, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("tokens.signing_key_file: %w", err)
		}
	} else {
		log.Warn("no signing key configured; using the keys stored in the database (production should set tokens.signing_key_file)")
	}
	keys, err := auth.LoadKeys(ctx, st, TokenConfig(cfg, tenants), configured, now, log)
	if err != nil && configured != nil {
		return nil, fmt.Errorf("tokens.signing_key_file: %w", err)
	}
	return keys, err
}
