package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/password"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

// app is one wired Latch instance: what `latch serve` runs and what the end-to-end tests drive.
type app struct {
	cfg     config.Config
	log     *slog.Logger
	store   *store.Store
	keys    *auth.Keys
	svc     *auth.Service
	worker  *mail.Worker
	server  *httpapi.Server
	metrics *httpapi.Metrics
	inbox   *mail.Inbox
}

// openStore connects and, when asked, migrates.
func openStore(ctx context.Context, cfg config.Config, now func() time.Time, migrate bool) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxOpenConns: cfg.Database.MaxOpenConns,
		MaxIdleConns: cfg.Database.MaxIdleConns, ConnMaxLifetime: cfg.Database.ConnMaxLifetime})
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

func tokenConfig(cfg config.Config) token.Config {
	return token.Config{Issuer: cfg.Tokens.Issuer, Audience: cfg.Tokens.Audience, AccessTTL: cfg.Tokens.AccessTTL, Alg: cfg.Tokens.Algorithm}
}

func newHasher(cfg config.Config) (*password.Hasher, error) {
	p := password.OWASP()
	p.Memory, p.Iterations, p.Parallelism = cfg.Password.Argon2Memory, cfg.Password.Argon2Iterations, cfg.Password.Argon2Parallelism
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("password.argon2_*: %w", err)
	}
	return password.NewHasher(p, hashSlots(cfg), cfg.Password.QueueTimeout, nil), nil
}

// newApp wires every component from the configuration. now is the clock of the whole instance.
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (*app, error) {
	a := &app{cfg: cfg, log: log}
	var err error
	if a.store, err = openStore(ctx, cfg, now, cfg.Database.AutoMigrate); err != nil {
		return nil, err
	}
	fail := func(err error) (*app, error) { a.store.Close(); return nil, err }

	secrets, err := auth.LoadSecrets(ctx, a.store, cfg.Secrets.CodeHMACKey, cfg.Secrets.RefreshKey, log)
	if err != nil {
		return fail(err)
	}
	if a.keys, err = auth.LoadKeys(ctx, a.store, tokenConfig(cfg), cfg.Tokens.SigningKeyFile, now, log); err != nil {
		return fail(err)
	}
	hasher, err := newHasher(cfg)
	if err != nil {
		return fail(err)
	}
	a.svc = auth.New(auth.Config{
		CodeTTL: cfg.Codes.TTL, CodeMaxAttempts: cfg.Codes.MaxAttempts, ResendCooldown: cfg.Codes.ResendCooldown, CodesPerHour: cfg.Codes.MaxPerHour,
		AccessTTL: cfg.Tokens.AccessTTL, RefreshIdleTTL: cfg.Tokens.RefreshIdleTTL, SessionMaxAge: cfg.Tokens.SessionMaxAge, ReuseGrace: cfg.Tokens.RefreshReuseGrace,
		PasswordMinLength: cfg.Password.MinLength, PasswordMaxLength: cfg.Password.MaxLength,
		Throttle: auth.ThrottleConfig{FreeFailures: cfg.RateLimit.FreeFailures, BaseDelay: cfg.RateLimit.BaseDelay,
			MaxDelay: cfg.RateLimit.MaxDelay, Ceiling: cfg.RateLimit.AccountCeiling},
	}, a.store, a.keys, hasher, secrets, log)
	a.svc.Now = now

	renderer, err := mail.NewRenderer(cfg.Mail.TemplatesDir)
	if err != nil {
		return fail(fmt.Errorf("mail.templates_dir: %w", err))
	}
	var sender mail.Sender
	switch cfg.Mail.Driver {
	case "smtp":
		if sender, err = mail.NewSMTP(mail.SMTPConfig{Host: cfg.Mail.SMTP.Host, Port: cfg.Mail.SMTP.Port,
			Username: cfg.Mail.SMTP.Username, Password: cfg.Mail.SMTP.Password, TLS: cfg.Mail.SMTP.TLS, From: cfg.Mail.From,
			ConnectTimeout: cfg.Mail.SMTP.ConnectTimeout, SendTimeout: cfg.Mail.SMTP.SendTimeout}); err != nil {
			return fail(fmt.Errorf("mail.smtp: %w", err))
		}
	default:
		sender = mail.NewLog(log)
	}
	if cfg.Sandbox.Enabled {
		a.inbox = mail.NewInbox(sender, 50)
		sender = a.inbox
	}

	sqlStats := a.store.SQLDB()
	a.metrics = httpapi.NewMetrics(sqlStats, func(ctx context.Context) (int64, time.Duration, error) {
		st, err := a.store.OutboxStats(ctx)
		var age time.Duration
		if st.Oldest != nil {
			age = now().Sub(*st.Oldest)
		}
		return st.Pending, age, err
	})
	hasher.WaitObserver = func(d time.Duration) { a.metrics.HashWait.Observe(d.Seconds()) }

	a.worker = mail.NewWorker(a.store, renderer, sender, log)
	a.worker.Observe = func(delay time.Duration, err error) {
		if err != nil {
			a.metrics.MailSent.WithLabelValues("failed").Inc()
			return
		}
		a.metrics.MailSent.WithLabelValues("sent").Inc()
		a.metrics.MailDelay.Observe(delay.Seconds())
	}
	a.svc.OnMailQueued(a.worker.Wake)

	proxies, err := cfg.Server.TrustedProxyPrefixes()
	if err != nil {
		return fail(err)
	}
	hc := httpapi.Config{TrustedProxies: proxies, AllowQueryParam: cfg.Tokens.AllowQueryParam, CookieSecure: cfg.Tokens.CookieSecure,
		IPPerMinute: cfg.RateLimit.IPPerMinute, IPBurst: cfg.RateLimit.IPBurst, Ready: a.store.Ping, Metrics: a.metrics}
	if a.inbox != nil {
		hc.Sandbox = a.inbox
	}
	a.server = httpapi.New(hc, a.svc, log)
	return a, nil
}

// runBackground runs the outbox worker and the key reloader until ctx ends.
func (a *app) runBackground(ctx context.Context) (wait func()) {
	done := make(chan struct{}, 2)
	go func() { a.worker.Run(ctx); done <- struct{}{} }()
	go func() { a.keys.Run(ctx, time.Minute); done <- struct{}{} }()
	return func() { <-done; <-done }
}

func (a *app) close() error { return a.store.Close() }
