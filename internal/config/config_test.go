package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/latch-auth/latch/internal/seal"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// errorKeys returns the key of every KeyError in err, which may be a joined error.
func errorKeys(err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var keys []string
		for _, e := range joined.Unwrap() {
			keys = append(keys, errorKeys(e)...)
		}
		return keys
	}
	var keyErr *KeyError
	if errors.As(err, &keyErr) {
		return []string{keyErr.Key}
	}
	return nil
}

func TestDefaultsApplyWithoutFileOrEnv(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	got, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("Load without a file (-want +got):\n%s", diff)
	}
}

func TestDefaultValuesFromSpec(t *testing.T) {
	c := Default()
	got := map[string]any{
		"server.addr":                c.Server.Addr,
		"database.url":               c.Database.URL,
		"mail.driver":                c.Mail.Driver,
		"mail.from":                  c.Mail.From,
		"mail.smtp.port":             c.Mail.SMTP.Port,
		"mail.smtp.tls":              c.Mail.SMTP.TLS,
		"codes.ttl":                  c.Codes.TTL,
		"codes.max_attempts":         c.Codes.MaxAttempts,
		"codes.resend_cooldown":      c.Codes.ResendCooldown,
		"codes.max_per_hour":         c.Codes.MaxPerHour,
		"tokens.algorithm":           c.Tokens.Algorithm,
		"tokens.access_ttl":          c.Tokens.AccessTTL,
		"tokens.refresh_idle_ttl":    c.Tokens.RefreshIdleTTL,
		"tokens.session_max_age":     c.Tokens.SessionMaxAge,
		"tokens.refresh_reuse_grace": c.Tokens.RefreshReuseGrace,
		"ratelimit.ip_per_minute":    c.RateLimit.IPPerMinute,
		"ratelimit.ip_burst":         c.RateLimit.IPBurst,
	}
	want := map[string]any{
		"server.addr":                ":10952",
		"database.url":               "sqlite://latch.db",
		"mail.driver":                "log",
		"mail.from":                  "Latch <no-reply@localhost>",
		"mail.smtp.port":             587,
		"mail.smtp.tls":              "starttls",
		"codes.ttl":                  10 * time.Minute,
		"codes.max_attempts":         5,
		"codes.resend_cooldown":      60 * time.Second,
		"codes.max_per_hour":         10,
		"tokens.algorithm":           "ES256",
		"tokens.access_ttl":          15 * time.Minute,
		"tokens.refresh_idle_ttl":    7 * 24 * time.Hour,
		"tokens.session_max_age":     30 * 24 * time.Hour,
		"tokens.refresh_reuse_grace": 10 * time.Second,
		"ratelimit.ip_per_minute":    60,
		"ratelimit.ip_burst":         30,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestRepoConfigFileEqualsDefault(t *testing.T) {
	const path = "../../config.yaml"
	got, err := Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("config.yaml differs from Default() (-want +got):\n%s", diff)
	}

	// Equal values alone would not notice a key missing from the file; the file must list them all.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var wantKeys []string
	leaves := map[string]bool{}
	for _, f := range leafFields() {
		wantKeys = append(wantKeys, f.key)
		leaves[f.key] = true
	}
	if diff := cmp.Diff(wantKeys, fileLeafKeys(doc.Content[0], "", leaves)); diff != "" {
		t.Errorf("keys in config.yaml (-want +got):\n%s", diff)
	}
}

// fileLeafKeys lists the keys a YAML mapping sets; a mapping under a leaf key (a JSON object such as
// default_tenant.routes) is that key's value.
func fileLeafKeys(n *yaml.Node, prefix string, leaves map[string]bool) []string {
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := joinKey(prefix, n.Content[i].Value)
		if n.Content[i+1].Kind == yaml.MappingNode && !leaves[key] {
			keys = append(keys, fileLeafKeys(n.Content[i+1], key, leaves)...)
		} else {
			keys = append(keys, key)
		}
	}
	return keys
}

func TestFileOverridesDefaults(t *testing.T) {
	path := writeFile(t, `
server:
  addr: "127.0.0.1:8080"
  trusted_proxies: ["10.0.0.0/8", "192.168.1.7"]
database:
  url: postgres://latch@db:5432/latch?sslmode=disable
  auto_migrate: false
mail:
  driver: smtp
  smtp:
    host: smtp.example.com
    port: 465
    tls: tls
tokens:
  algorithm: EdDSA
  refresh_idle_ttl: 24h
  refresh_reuse_grace: 0s
password:
  argon2_memory_kib: 65536
  argon2_parallelism: 4
sandbox:
  enabled: true
`)
	got, err := Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.Addr = "127.0.0.1:8080"
	want.Server.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.7"}
	want.Database.URL = "postgres://latch@db:5432/latch?sslmode=disable"
	want.Database.AutoMigrate = false
	want.Mail.Driver = "smtp"
	want.Mail.SMTP.Host = "smtp.example.com"
	want.Mail.SMTP.Port = 465
	want.Mail.SMTP.TLS = "tls"
	want.Tokens.Algorithm = "EdDSA"
	want.Tokens.RefreshIdleTTL = 24 * time.Hour
	want.Tokens.RefreshReuseGrace = 0
	want.Password.Argon2Memory = 65536
	want.Password.Argon2Parallelism = 4
	want.Sandbox.Enabled = true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDefaultTenantRoutesAsMappingOrJSON(t *testing.T) {
	const want = JSONObject(`{"base":"https://api.example.test/","query":"https://api.example.test/query"}`)
	path := writeFile(t, `
default_tenant:
  second_step: "off"
  refresh_rotation: false
  routes:
    base: https://api.example.test/
    query: https://api.example.test/query
`)
	got, err := Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := Default()
	wantCfg.DefaultTenant.SecondStep = "off"
	wantCfg.DefaultTenant.RefreshRotation = false
	wantCfg.DefaultTenant.Routes = want
	if diff := cmp.Diff(wantCfg, got); diff != "" {
		t.Errorf("routes as a YAML mapping (-want +got):\n%s", diff)
	}
	for name, src := range map[string]func() (Config, error){
		"JSON string in the file": func() (Config, error) {
			return Load(writeFile(t, "default_tenant:\n  routes: '"+string(want)+"'\n"), true, nil)
		},
		"environment": func() (Config, error) {
			return Load("", false, []string{"LATCH_DEFAULT_TENANT_ROUTES=" + string(want)})
		},
	} {
		got, err := src()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.DefaultTenant.Routes != want {
			t.Errorf("%s: routes = %s, want %s", name, got.DefaultTenant.Routes, want)
		}
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	for name, content := range map[string]string{
		"empty":         "",
		"comments only": "# nothing set\n",
		"empty section": "mail:\n  smtp:\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(writeFile(t, content), true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Default(), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvOverridesBeatFile(t *testing.T) {
	path := writeFile(t, `
mail:
  smtp:
    host: from-file.example.com
    port: 2525
server:
  trusted_proxies: ["10.0.0.0/8"]
`)
	environ := []string{
		"PATH=/usr/bin",
		"LATCH_DATABASE_URL=postgresql://latch:pw@db/latch",
		"LATCH_MAIL_SMTP_HOST=from-env.example.com",
		"LATCH_SERVER_TRUSTED_PROXIES=172.16.0.0/12, 10.1.2.3",
		"LATCH_RATELIMIT_IP_PER_MINUTE=0",
		"LATCH_TOKENS_REFRESH_REUSE_GRACE=2s",
		"LATCH_TOKENS_ALLOW_QUERY_PARAM=true",
		"LATCH_PASSWORD_ARGON2_MEMORY_KIB=32768",
		"LATCH_PASSWORD_ARGON2_PARALLELISM=2",
		"LATCH_SECRETS_CODE_HMAC_KEY=0123456789abcdef0123456789abcdef",
		"LATCH_SERVER_ADDR=:9000",
		"LATCH_SERVER_ADDR=:9001", // the later entry wins, as with exec.Cmd.Env
	}
	got, err := Load(path, true, environ)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.Addr = ":9001"
	want.Server.TrustedProxies = []string{"172.16.0.0/12", "10.1.2.3"}
	want.Database.URL = "postgresql://latch:pw@db/latch"
	want.Mail.SMTP.Host = "from-env.example.com"
	want.Mail.SMTP.Port = 2525 // from the file: env left it alone
	want.RateLimit.IPPerMinute = 0
	want.Tokens.RefreshReuseGrace = 2 * time.Second
	want.Tokens.AllowQueryParam = true
	want.Password.Argon2Memory = 32768
	want.Password.Argon2Parallelism = 2
	want.Secrets.CodeHMACKey = "0123456789abcdef0123456789abcdef"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEmptyEnvListClearsFileList(t *testing.T) {
	path := writeFile(t, "server:\n  trusted_proxies: [\"10.0.0.0/8\"]\n")
	got, err := Load(path, true, []string{"LATCH_SERVER_TRUSTED_PROXIES="})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{}, got.Server.TrustedProxies); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUnknownEnvIsIgnoredButReported(t *testing.T) {
	environ := []string{"LATCH_DATABSE_URL=postgres://typo", "LATCH_MAIL_DRIVER=smtp", "HOME=/root", "LATCH_DATABSE_URL=x"}
	got, err := Load("", false, environ)
	if err != nil {
		t.Fatal(err)
	}
	if got.Database.URL != Default().Database.URL {
		t.Errorf("database.url = %q, want the default", got.Database.URL)
	}
	if diff := cmp.Diff([]string{"LATCH_DATABSE_URL"}, UnknownEnv(environ)); diff != "" {
		t.Errorf("UnknownEnv (-want +got):\n%s", diff)
	}
}

func TestEnvNamesAreDistinct(t *testing.T) {
	seen := make(map[string]string)
	for _, f := range leafFields() {
		if other, dup := seen[f.env]; dup {
			t.Errorf("%s and %s both map to %s", other, f.key, f.env)
		}
		seen[f.env] = f.key
	}
	if len(seen) == 0 {
		t.Fatal("no keys found by reflection")
	}
}

func TestInvalidValuesNameTheirKey(t *testing.T) {
	tests := []struct {
		env     string
		wantKey string
	}{
		{"LATCH_SERVER_ADDR=10952", "server.addr"},
		{"LATCH_SERVER_ADDR=:http", "server.addr"},
		{"LATCH_SERVER_TRUSTED_PROXIES=10.0.0.0/8,not-an-ip", "server.trusted_proxies"},
		{"LATCH_SERVER_TRUSTED_PROXIES=10.0.0.0/33", "server.trusted_proxies"},
		{"LATCH_SERVER_SHUTDOWN_TIMEOUT=0s", "server.shutdown_timeout"},
		{"LATCH_SERVER_PPROF_ADDR=0.0.0.0:6060", "server.pprof_addr"},
		{"LATCH_SERVER_PPROF_ADDR=6060", "server.pprof_addr"},
		{"LATCH_DATABASE_URL=mysql://db/latch", "database.url"},
		{"LATCH_DATABASE_URL=latch.db", "database.url"},
		{"LATCH_DATABASE_URL=sqlite://", "database.url"},
		{"LATCH_DATABASE_URL=postgres://db:port/latch", "database.url"},
		{"LATCH_DATABASE_AUTO_MIGRATE=maybe", "database.auto_migrate"},
		{"LATCH_DATABASE_MAX_OPEN_CONNS=-1", "database.max_open_conns"},
		{"LATCH_DATABASE_MAX_IDLE_CONNS=many", "database.max_idle_conns"},
		{"LATCH_DATABASE_CONN_MAX_LIFETIME=-1m", "database.conn_max_lifetime"},
		{"LATCH_DATABASE_PGBOUNCER=yes", "database.pgbouncer"},
		{"LATCH_DATABASE_PGBOUNCER=true", "database.pgbouncer"}, // with the default sqlite:// url
		{"LATCH_LOG_LEVEL=verbose", "log.level"},
		{"LATCH_LOG_FORMAT=xml", "log.format"},
		{"LATCH_MAIL_DRIVER=smtpx", "mail.driver"},
		{"LATCH_MAIL_FROM=not an address", "mail.from"},
		{"LATCH_MAIL_SMTP_PORT=0", "mail.smtp.port"},
		{"LATCH_MAIL_SMTP_PORT=65536", "mail.smtp.port"},
		{"LATCH_MAIL_SMTP_PORT=abc", "mail.smtp.port"},
		{"LATCH_MAIL_SMTP_TLS=ssl", "mail.smtp.tls"},
		{"LATCH_MAIL_SMTP_CONNECT_TIMEOUT=10", "mail.smtp.connect_timeout"},
		{"LATCH_MAIL_SMTP_SEND_TIMEOUT=0s", "mail.smtp.send_timeout"},
		{"LATCH_CODES_TTL=0s", "codes.ttl"},
		{"LATCH_CODES_MAX_ATTEMPTS=0", "codes.max_attempts"},
		{"LATCH_CODES_RESEND_COOLDOWN=-1s", "codes.resend_cooldown"},
		{"LATCH_CODES_MAX_PER_HOUR=0", "codes.max_per_hour"},
		{"LATCH_TOKENS_ISSUER=", "tokens.issuer"},
		{"LATCH_TOKENS_AUDIENCE= ", "tokens.audience"},
		{"LATCH_TOKENS_ALGORITHM=HS512", "tokens.algorithm"},
		{"LATCH_TOKENS_ACCESS_TTL=0s", "tokens.access_ttl"},
		{"LATCH_TOKENS_REFRESH_IDLE_TTL=7d", "tokens.refresh_idle_ttl"},
		{"LATCH_TOKENS_SESSION_MAX_AGE=-1h", "tokens.session_max_age"},
		{"LATCH_TOKENS_REFRESH_REUSE_GRACE=-1s", "tokens.refresh_reuse_grace"},
		{"LATCH_TOKENS_ALLOW_QUERY_PARAM=yes", "tokens.allow_query_param"},
		{"LATCH_TOKENS_COOKIE_SECURE=", "tokens.cookie_secure"},
		{"LATCH_SECRETS_CODE_HMAC_KEY=short", "secrets.code_hmac_key"},
		{"LATCH_SECRETS_REFRESH_KEY=0123456789abcdef0123456789abcde", "secrets.refresh_key"},
		{"LATCH_PASSWORD_MIN_LENGTH=0", "password.min_length"},
		{"LATCH_PASSWORD_MAX_LENGTH=7", "password.max_length"},
		{"LATCH_PASSWORD_MAX_LENGTH=1025", "password.max_length"},
		{"LATCH_PASSWORD_ARGON2_MEMORY_KIB=7", "password.argon2_memory_kib"},
		{"LATCH_PASSWORD_ARGON2_MEMORY_KIB=-1", "password.argon2_memory_kib"},
		{"LATCH_PASSWORD_ARGON2_ITERATIONS=0", "password.argon2_iterations"},
		{"LATCH_PASSWORD_ARGON2_PARALLELISM=0", "password.argon2_parallelism"},
		{"LATCH_PASSWORD_ARGON2_PARALLELISM=256", "password.argon2_parallelism"},
		{"LATCH_PASSWORD_MAX_CONCURRENT=-1", "password.max_concurrent"},
		{"LATCH_PASSWORD_QUEUE_TIMEOUT=0s", "password.queue_timeout"},
		{"LATCH_RATELIMIT_IP_PER_MINUTE=-1", "ratelimit.ip_per_minute"},
		{"LATCH_RATELIMIT_IP_BURST=0", "ratelimit.ip_burst"},
		{"LATCH_RATELIMIT_FREE_FAILURES=-1", "ratelimit.free_failures"},
		{"LATCH_RATELIMIT_BASE_DELAY=-1s", "ratelimit.base_delay"},
		{"LATCH_RATELIMIT_MAX_DELAY=10s", "ratelimit.max_delay"},
		{"LATCH_RATELIMIT_ACCOUNT_CEILING=-1", "ratelimit.account_ceiling"},
		{"LATCH_SECRETS_TOTP_KEY=v2:short", "secrets.totp_key"},
		{"LATCH_SECRETS_TOTP_PREVIOUS_KEY=0123456789abcdef0123456789abcdef", "secrets.totp_previous_key"},
		{"LATCH_TOTP_ISSUER=Acme:Pay", "totp.issuer"},
		{"LATCH_TOTP_ISSUER= ", "totp.issuer"},
		{"LATCH_SURFACES_DIRECTUS_ENABLED=maybe", "surfaces.directus.enabled"},
		{"LATCH_SANDBOX_ENABLED=on", "sandbox.enabled"},
		{"LATCH_DEFAULT_TENANT_SECOND_STEP=sms", "default_tenant.second_step"},
		{"LATCH_DEFAULT_TENANT_REFRESH_ROTATION=sometimes", "default_tenant.refresh_rotation"},
		{"LATCH_DEFAULT_TENANT_ROUTES=[]", "default_tenant.routes"},
		{"LATCH_DEFAULT_TENANT_ROUTES={base", "default_tenant.routes"},
		{"LATCH_SURFACES_DEVII_ENABLED=yes", "surfaces.devii.enabled"},
		{"LATCH_SURFACES_DEVII_PREFIX=devii", "surfaces.devii.prefix"},
		{"LATCH_SURFACES_DEVII_PREFIX=/devii/", "surfaces.devii.prefix"},
		{"LATCH_SURFACES_DEVII_PREFIX=/v2/devii", "surfaces.devii.prefix"},
		{"LATCH_SURFACES_DEVII_PREFIX=/t", "surfaces.devii.prefix"},
		{"LATCH_SURFACES_DEVII_PREFIX=/de vii", "surfaces.devii.prefix"},
		{"LATCH_CODES_INVITATION_TTL=0s", "codes.invitation_ttl"},
		{"LATCH_ADMIN_ENABLED=sure", "admin.enabled"},
		{"LATCH_ADMIN_LISTENER=private", "admin.listener"},
		{"LATCH_ADMIN_LISTENER=internal", "admin.listener"}, // without server.internal_addr
		{"LATCH_ADMIN_LISTENER=both", "admin.listener"},
		{"LATCH_SERVER_CORS_MAX_AGE=-1s", "server.cors.max_age"},
		{"LATCH_SERVER_CORS_MAX_AGE=25h", "server.cors.max_age"},
		{"LATCH_SERVER_CORS_ALLOW_CREDENTIALS=maybe", "server.cors.allow_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("", false, []string{tt.env})
			var keyErr *KeyError
			if !errors.As(err, &keyErr) {
				t.Fatalf("Load error = %v, want a *KeyError", err)
			}
			if diff := cmp.Diff([]string{tt.wantKey}, errorKeys(err)); diff != "" {
				t.Errorf("keys in error (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestAdminListeners(t *testing.T) {
	type where struct{ Public, Internal bool }
	for _, c := range []struct {
		env  []string
		want where
	}{
		{nil, where{Public: true}},
		{[]string{"LATCH_SERVER_INTERNAL_ADDR=127.0.0.1:9100"}, where{Internal: true}},
		{[]string{"LATCH_SERVER_INTERNAL_ADDR=127.0.0.1:9100", "LATCH_ADMIN_LISTENER=public"}, where{Public: true}},
		{[]string{"LATCH_SERVER_INTERNAL_ADDR=127.0.0.1:9100", "LATCH_ADMIN_LISTENER=both"}, where{Public: true, Internal: true}},
		{[]string{"LATCH_SERVER_INTERNAL_ADDR=127.0.0.1:9100", "LATCH_ADMIN_LISTENER=internal"}, where{Internal: true}},
		{[]string{"LATCH_SERVER_INTERNAL_ADDR=127.0.0.1:9100", "LATCH_ADMIN_ENABLED=false"}, where{}},
		{[]string{"LATCH_ADMIN_ENABLED=false"}, where{}},
	} {
		cfg, err := Load("", false, c.env)
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		var got where
		got.Public, got.Internal = cfg.AdminListeners()
		if got != c.want {
			t.Errorf("%v: admin API on %+v, want %+v", c.env, got, c.want)
		}
	}
}

func TestPgBouncerWithPostgresURL(t *testing.T) {
	got, err := Load("", false, []string{"LATCH_DATABASE_URL=postgres://latch@pgbouncer:6432/latch", "LATCH_DATABASE_PGBOUNCER=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Database.PgBouncer {
		t.Error("database.pgbouncer not set from LATCH_DATABASE_PGBOUNCER")
	}
}

func TestSMTPHostRequiredOnlyForSMTPDriver(t *testing.T) {
	if _, err := Load("", false, []string{"LATCH_MAIL_SMTP_HOST="}); err != nil {
		t.Errorf("log driver with no SMTP host: %v", err)
	}
	_, err := Load("", false, []string{"LATCH_MAIL_SMTP_HOST=", "LATCH_MAIL_DRIVER=smtp"})
	if diff := cmp.Diff([]string{"mail.smtp.host"}, errorKeys(err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestIPBurstMayBeZeroWhenBucketIsOff(t *testing.T) {
	if _, err := Load("", false, []string{"LATCH_RATELIMIT_IP_PER_MINUTE=0", "LATCH_RATELIMIT_IP_BURST=0"}); err != nil {
		t.Error(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Codes.TTL = 0
	c.Mail.Driver = "pigeon"
	want := []string{"mail.driver", "codes.ttl"}
	if diff := cmp.Diff(want, errorKeys(c.Validate())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInvalidFileNamesKeyAndLine(t *testing.T) {
	tests := []struct {
		name, content, wantKey, wantSource string
	}{
		{"bad duration", "codes:\n  ttl: 10 minutes\n", "codes.ttl", "config.yaml:2"},
		{"bad int", "mail:\n  smtp:\n    port: smtp\n", "mail.smtp.port", "config.yaml:3"},
		{"null int", "codes:\n  max_attempts:\n", "codes.max_attempts", "config.yaml:2"},
		{"list wanted", "server:\n  trusted_proxies: 10.0.0.0/8\n", "server.trusted_proxies", "config.yaml:2"},
		{"scalar wanted", "server:\n  addr: [a, b]\n", "server.addr", "config.yaml:2"},
		{"section wanted", "server: 1\n", "server", "config.yaml:1"},
		{"duplicate", "log:\n  level: info\n  level: debug\n", "log.level", "config.yaml:3"},
		{"validation", "mail:\n  driver: smtpx\n", "mail.driver", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := Load(path, true, nil)
			var keyErr *KeyError
			if !errors.As(err, &keyErr) {
				t.Fatalf("Load error = %v, want a *KeyError", err)
			}
			got := []string{keyErr.Key, strings.TrimPrefix(keyErr.Source, filepath.Dir(path)+string(filepath.Separator))}
			if diff := cmp.Diff([]string{tt.wantKey, tt.wantSource}, got); diff != "" {
				t.Errorf("key, source (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownFileKeyRejected(t *testing.T) {
	tests := map[string]string{
		"tokens.acces_ttl": "tokens:\n  acces_ttl: 5m\n",
		"mail.smtp.pass":   "mail:\n  smtp:\n    pass: x\n",
		"metrics":          "metrics:\n  enabled: true\n",
	}
	for wantKey, content := range tests {
		t.Run(wantKey, func(t *testing.T) {
			_, err := Load(writeFile(t, content), true, nil)
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("error %v does not wrap ErrUnknownKey", err)
			}
			var keyErr *KeyError
			if !errors.As(err, &keyErr) {
				t.Fatalf("Load error = %v, want a *KeyError", err)
			}
			if keyErr.Key != wantKey {
				t.Errorf("key = %q, want %q", keyErr.Key, wantKey)
			}
		})
	}
}

func TestFileProblemsOutsideKeys(t *testing.T) {
	tests := map[string]string{
		"not yaml":       "server: [\n",
		"top-level list": "- a\n- b\n",
		"two documents":  "log:\n  level: info\n---\nlog:\n  level: debug\n",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(writeFile(t, content), true, nil); err == nil {
				t.Error("Load succeeded")
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := Load(absent, true, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("required missing file: error = %v, want fs.ErrNotExist", err)
	}
	if _, err := Load("", true, nil); err == nil {
		t.Error("required with no path: Load succeeded")
	}
	got, err := Load(absent, false, []string{"LATCH_LOG_LEVEL=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Log.Level != "debug" {
		t.Errorf("env not applied without a file: log.level = %q", got.Log.Level)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c := Default()
	c.Mail.SMTP.Password = "smtp-hunter2"
	c.Secrets.CodeHMACKey = strings.Repeat("k", 32)
	c.Database.URL = "postgres://latch:db-hunter2@db:5432/latch?sslmode=disable"
	c.Server.TrustedProxies = []string{"10.0.0.0/8"}
	original := c

	got := c.Redacted()

	want := c
	want.Mail.SMTP.Password = "[redacted]"
	want.Secrets.CodeHMACKey = "[redacted]"
	want.Secrets.RefreshKey = "" // unset stays visibly unset
	want.Database.URL = "postgres://latch:xxxxx@db:5432/latch?sslmode=disable"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got.Server.TrustedProxies[0] = "changed"
	if diff := cmp.Diff(original, c); diff != "" {
		t.Errorf("Redacted changed its receiver (-want +got):\n%s", diff)
	}
}

func TestRedactedMasksPasswordInDatabaseQuery(t *testing.T) {
	c := Default()
	c.Database.URL = "postgres://db/latch?password=db-hunter2&user=latch"
	if got := c.Redacted().Database.URL; strings.Contains(got, "db-hunter2") {
		t.Errorf("redacted database.url %q still holds the password", got)
	}
}

func TestSecretValuesStayOutOfErrors(t *testing.T) {
	const secret = "hunter2-secret"
	environs := [][]string{
		{"LATCH_SECRETS_CODE_HMAC_KEY=" + secret},
		{"LATCH_SECRETS_REFRESH_KEY=" + secret},
		{"LATCH_DATABASE_URL=postgres://latch:" + secret + "@db:port/latch"},
		{"LATCH_DATABASE_URL=postgres://latch:x/" + secret + "@db/latch"}, // "/" ends the host early
		{"LATCH_DATABASE_URL=postgres://latch:" + secret + "/x@db/latch"},
		{"LATCH_DATABASE_URL=mysql://latch:" + secret + "@db/latch"},
		{"LATCH_DATABASE_URL=" + secret},
		{"LATCH_SECRETS_TOTP_KEY=v1:" + secret},
		{"LATCH_SECRETS_TOTP_KEY=v1:" + secret + secret + secret, "LATCH_SECRETS_TOTP_PREVIOUS_KEY=" + secret + secret + secret},
	}
	for _, environ := range environs {
		_, err := Load("", false, environ)
		if err == nil {
			t.Errorf("%v: Load succeeded", environ)
			continue
		}
		// A leak check, not a message comparison: the value must simply be absent.
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	s := Server{TrustedProxies: []string{"10.1.2.3/8", "192.168.1.7", "2001:db8::1", "fd00::/8"}}
	got, err := s.TrustedProxyPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTOTPKeys(t *testing.T) {
	const current, previous = "v2:0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	c, err := Load("", false, []string{"LATCH_SECRETS_TOTP_KEY=" + current, "LATCH_SECRETS_TOTP_PREVIOUS_KEY=" + previous})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Secrets.TOTPKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := []seal.Secret{{Version: 2, Material: []byte(current[3:])}, {Version: 1, Material: []byte(previous)}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if keys, err := Default().Secrets.TOTPKeys(); keys != nil || err != nil {
		t.Errorf("default TOTPKeys = %v, %v; want none (generated)", keys, err)
	}
	_, err = Load("", false, []string{"LATCH_SECRETS_TOTP_KEY=" + previous, "LATCH_SECRETS_TOTP_PREVIOUS_KEY=v1:" + current[3:]})
	if diff := cmp.Diff([]string{"secrets.totp_previous_key"}, errorKeys(err)); diff != "" {
		t.Errorf("two keys of version 1: keys in error (-want +got):\n%s", diff)
	}
}

func TestCORSFromTheEnvironment(t *testing.T) {
	got, err := Load("", false, []string{"LATCH_SERVER_CORS_ALLOWED_ORIGINS=https://a.example, http://localhost:5173",
		"LATCH_SERVER_CORS_ALLOW_CREDENTIALS=true", "LATCH_SERVER_CORS_MAX_AGE=2h", "LATCH_SERVER_CORS_ADMIN=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := CORS{AllowedOrigins: []string{"https://a.example", "http://localhost:5173"}, AllowCredentials: true, MaxAge: 2 * time.Hour, Admin: true}
	if diff := cmp.Diff(want, got.Server.CORS); diff != "" {
		t.Errorf("server.cors (-want +got):\n%s", diff)
	}
}
