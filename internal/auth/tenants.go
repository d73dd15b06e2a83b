package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Tenant is one product or customer served by a Latch deployment: its users are its own (an email is
// unique per tenant), and its settings shape their login, tokens and email.
type Tenant struct {
	ID        string
	Name      string
	Settings  TenantSettings
	CreatedAt time.Time
}

// Second step modes of a tenant.
const (
	// SecondStepEmailCode: the password step emails a code, which the client exchanges for tokens.
	SecondStepEmailCode = "email_code"
	// SecondStepOff: the password step answers tokens, for clients that cannot be changed.
	SecondStepOff = "off"
)

// TenantSettings are a tenant's rules and branding. An empty string means "the deployment's default":
// AppName the product name of the email templates, MailFrom mail.from, Issuer tokens.issuer.
type TenantSettings struct {
	SecondStep string
	// RefreshRotation false keeps one refresh token per session, still revocable and still bound by
	// the idle and absolute lifetimes, for clients that never store a new one.
	RefreshRotation bool
	AppName         string
	MailFrom        string
	Locale          string
	AllowedOrigins  []string
	// Routes is a JSON object returned by the Devii surface; "{}" when none.
	Routes json.RawMessage
	Issuer string
}

// DefaultTenantSettings are the settings of a tenant created with none given.
func DefaultTenantSettings() TenantSettings {
	return TenantSettings{SecondStep: SecondStepEmailCode, RefreshRotation: true, Locale: "en", AllowedOrigins: []string{},
		Routes: json.RawMessage("{}")}
}

// Limits on tenant and user data.
const (
	MaxMetadataBytes = 4 << 10
	maxRoutesBytes   = 16 << 10
	maxNameLength    = 200
	maxRoleLength    = 64
	maxIssuerLength  = 512
)

var (
	tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	localePattern   = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
	rolePattern     = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// ValidTenantID reports whether id can name a tenant: 1 to 63 lower-case letters, digits, '-' or '_',
// starting with a letter or digit ("acme", "179").
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

const tenantIDRule = "must be 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"

// TenantInput is what an operator sets on a tenant; nil leaves a field as it is (on creation: at its
// default). Field names in errors are the camelCase names of the admin API.
type TenantInput struct {
	Name            *string
	SecondStep      *string
	RefreshRotation *bool
	AppName         *string
	MailFrom        *string
	Locale          *string
	AllowedOrigins  *[]string
	Routes          json.RawMessage // nil: unchanged
	Issuer          *string
}

// touchesSettings reports whether the input changes any setting (anything but the name).
func (in TenantInput) touchesSettings() bool {
	return in.SecondStep != nil || in.RefreshRotation != nil || in.AppName != nil || in.MailFrom != nil ||
		in.Locale != nil || in.AllowedOrigins != nil || in.Routes != nil || in.Issuer != nil
}

// apply merges the input into t and reports what is invalid about the result.
func (in TenantInput) apply(v *Validation, t *Tenant) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = strings.TrimSpace(*src)
		}
	}
	set(&t.Name, in.Name)
	st := &t.Settings
	set(&st.SecondStep, in.SecondStep)
	if in.RefreshRotation != nil {
		st.RefreshRotation = *in.RefreshRotation
	}
	set(&st.AppName, in.AppName)
	set(&st.MailFrom, in.MailFrom)
	set(&st.Locale, in.Locale)
	set(&st.Issuer, in.Issuer)
	if in.AllowedOrigins != nil {
		st.AllowedOrigins = slices.Clone(*in.AllowedOrigins)
	}
	if in.Routes != nil {
		if routes := jsonObject(v, "routes", in.Routes, maxRoutesBytes); routes != nil {
			st.Routes = routes
		}
	}
	checkTenant(v, *t)
}

func checkTenant(v *Validation, t Tenant) {
	switch n := utf8.RuneCountInString(t.Name); {
	case n == 0:
		v.Add("name", "is required")
	case n > maxNameLength || !printable(t.Name):
		v.Add("name", "must be at most 200 printable characters")
	}
	*v = append(*v, checkSettings(t.Settings)...)
}

// checkSettings validates settings wherever they come from: the admin's input or the configuration.
func checkSettings(st TenantSettings) Validation {
	var v Validation
	if st.SecondStep != SecondStepEmailCode && st.SecondStep != SecondStepOff {
		v.Add("secondStep", `must be "email_code" or "off"`)
	}
	if len(st.AppName) > maxNameLength || !printable(st.AppName) {
		v.Add("appName", "must be at most 200 printable characters")
	}
	if st.MailFrom != "" {
		if _, err := mail.ParseAddress(st.MailFrom); err != nil || !printable(st.MailFrom) {
			v.Add("mailFrom", `must be an address such as "Acme <no-reply@acme.example>"`)
		}
	}
	checkLocale(&v, "locale", st.Locale)
	for _, o := range st.AllowedOrigins {
		if !ValidOrigin(o) {
			v.Add("allowedOrigins", "must list origins such as https://app.example.com (scheme, host and port only)")
			break
		}
	}
	if len(st.Issuer) > maxIssuerLength || !printable(st.Issuer) {
		v.Add("issuer", "must be at most 512 printable characters")
	}
	if len(st.Routes) == 0 || st.Routes[0] != '{' {
		v.Add("routes", "must be a JSON object")
	}
	return v
}

// ValidOrigin reports whether o is an origin as browsers send it in an Origin header: http or https,
// a host and perhaps a port, nothing else ("null" is not one: it is what sandboxed pages send).
func ValidOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && o == u.Scheme+"://"+u.Host
}

// printable rejects control characters, which have no business in names, headers or claims.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return utf8.ValidString(s)
}

// jsonObject checks that raw is one JSON object of at most limit bytes once compacted, and returns it
// compacted.
func jsonObject(v *Validation, field string, raw json.RawMessage, limit int) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil || b.Len() == 0 || b.Bytes()[0] != '{' {
		v.Add(field, "must be a JSON object")
		return nil
	}
	if b.Len() > limit {
		v.Add(field, "must be at most "+byteSize(limit)+" of JSON")
		return nil
	}
	return json.RawMessage(b.Bytes())
}

func byteSize(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// TenantConfig is how the service resolves tenants: the default tenant's settings (which come from the
// configuration, not from its row), the issuer of tenants that name none, and how long this instance
// may keep settings read from the database.
type TenantConfig struct {
	Default TenantSettings
	Issuer  string
	// CacheFor bounds how stale an instance's view of another instance's (or the CLI's) change to a
	// tenant may be; changes made through this instance apply at once.
	CacheFor time.Duration
}

// DefaultTenantCacheFor is the staleness the wiring allows. Settings are read on every login, every
// refresh (the issuer of the new access token) and every token verification, so they cannot cost a
// query each; ten seconds is short enough that an operator who changes a tenant sees it apply while
// still looking, and at thousands of refreshes a second it costs one primary-key lookup per tenant
// per instance every ten seconds.
const DefaultTenantCacheFor = 10 * time.Second

// Directory resolves tenant ids to tenants through a per-instance cache. It is safe for concurrent use.
type Directory struct {
	store TenantStore
	cfg   TenantConfig
	now   func() time.Time

	mu      sync.RWMutex
	entries map[string]cachedTenant
}

type cachedTenant struct {
	tenant  Tenant
	expires time.Time
}

// maxCachedTenants bounds the cache; past it, expired entries are dropped, then everything.
const maxCachedTenants = 10_000

// NewDirectory checks the default tenant's settings and makes an empty cache.
func NewDirectory(st TenantStore, cfg TenantConfig, now func() time.Time) (*Directory, error) {
	var v Validation
	routes := jsonObject(&v, "routes", cfg.Default.Routes, maxRoutesBytes)
	cfg.Default.Routes = json.RawMessage("{}")
	if err := append(v, checkSettings(cfg.Default)...).Err(); err != nil {
		return nil, err
	}
	cfg.Default.Routes = routes
	if cfg.Issuer == "" {
		return nil, errors.New("auth: the default issuer is required")
	}
	return &Directory{store: st, cfg: cfg, now: now, entries: map[string]cachedTenant{}}, nil
}

// Tenant returns a tenant with its effective settings; ErrNotFound for an unknown or malformed id.
func (d *Directory) Tenant(ctx context.Context, id string) (Tenant, error) {
	if t, ok := d.cached(id); ok {
		return t, nil
	}
	if !ValidTenantID(id) {
		return Tenant{}, ErrNotFound
	}
	t, err := d.store.TenantByID(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	if id == DefaultTenantID {
		t.Settings = d.cfg.Default
	}
	now := d.now()
	d.mu.Lock()
	if len(d.entries) >= maxCachedTenants {
		for k, e := range d.entries {
			if !now.Before(e.expires) {
				delete(d.entries, k)
			}
		}
		if len(d.entries) >= maxCachedTenants {
			clear(d.entries)
		}
	}
	d.entries[id] = cachedTenant{tenant: t, expires: now.Add(d.cfg.CacheFor)}
	d.mu.Unlock()
	return t, nil
}

// cached is the tenant's cached copy while it is fresh: the path of almost every request.
func (d *Directory) cached(id string) (Tenant, bool) {
	d.mu.RLock()
	e, ok := d.entries[id]
	d.mu.RUnlock()
	if ok && d.now().Before(e.expires) {
		return e.tenant, true
	}
	return Tenant{}, false
}

// forget drops a tenant from this instance's cache after a change made here.
func (d *Directory) forget(id string) {
	d.mu.Lock()
	delete(d.entries, id)
	d.mu.Unlock()
}

// Issuer is the iss of a tenant's access tokens: its own issuer, else the deployment's.
func (d *Directory) Issuer(t Tenant) string {
	if t.Settings.Issuer != "" {
		return t.Settings.Issuer
	}
	return d.cfg.Issuer
}

// legacyDefaultTenantID is the default tenant's id before tenant ids were slugs (migration 00007).
const legacyDefaultTenantID = "00000000-0000-0000-0000-000000000000"

// IssuerOf is the issuer a token of the tenant must carry; token verification calls it (it has no
// request context, and the tenant id comes from a token whose signature already checked out, so a
// lookup on a cache miss is bounded by the tenants that exist).
func (d *Directory) IssuerOf(tenantID string) (string, error) {
	if tenantID == legacyDefaultTenantID {
		// Access tokens signed before the upgrade name the default tenant by its old id; they expire
		// within tokens.access_ttl of it, and until then they are the default tenant's.
		tenantID = DefaultTenantID
	}
	if t, ok := d.cached(tenantID); ok {
		return d.Issuer(t), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t, err := d.Tenant(ctx, tenantID)
	if err != nil {
		return "", err
	}
	return d.Issuer(t), nil
}

// Tenant returns a tenant with its effective settings.
func (s *Service) Tenant(ctx context.Context, id string) (Tenant, error) {
	t, err := s.tenants.Tenant(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return t, newError(CodeNotFound, "No such tenant.")
	case err != nil:
		return t, internal("load tenant", err)
	}
	return t, nil
}

// requestTenant resolves the tenant a request names ("" is the default tenant); an unknown or
// malformed id is a validation error on field tenantId, so every surface answers it as bad input.
func (s *Service) requestTenant(ctx context.Context, v *Validation, id string) (Tenant, error) {
	if id == "" {
		id = DefaultTenantID
	}
	t, err := s.tenants.Tenant(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		v.Add("tenantId", "is not a known tenant")
	case err != nil:
		return t, internal("load tenant", err)
	}
	return t, nil
}

// userTenant is the tenant of a user the service already holds; it exists, foreign keys say so.
func (s *Service) userTenant(ctx context.Context, tenantID string) (Tenant, error) {
	t, err := s.tenants.Tenant(ctx, tenantID)
	if err != nil {
		return t, internal("load tenant "+tenantID, err)
	}
	return t, nil
}

// OriginAllowed reports whether a browser page of origin may call the tenant's routes: the origin is
// one of the tenant's allowed origins (compared as hosts are, without regard to case). An unknown
// tenant allows nothing; so does one that cannot be read now (the request itself will fail).
func (s *Service) OriginAllowed(ctx context.Context, tenantID, origin string) bool {
	if tenantID == "" {
		tenantID = DefaultTenantID
	}
	t, err := s.tenants.Tenant(ctx, tenantID)
	if err != nil {
		return false
	}
	return OriginListed(t.Settings.AllowedOrigins, origin)
}

// OriginListed reports whether origin is in list, compared without regard to case.
func OriginListed(list []string, origin string) bool {
	for _, o := range list {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// TenantPage is a page of the tenant listing.
type TenantPage struct {
	Items      []Tenant
	NextCursor string // "" on the last page
}

// ListTenants lists the tenants the caller sees in id order, one page at a time; the default tenant
// with its configured settings.
func (s *Service) ListTenants(ctx context.Context, by Admin, p PageRequest) (TenantPage, error) {
	var v Validation
	limit := p.limit(&v)
	key := listing("tenants", by.Scope)
	after := ""
	if p.Cursor != "" {
		if pos := s.decodeCursor(&v, p.Cursor, key, 1); pos != nil {
			after = pos[0]
		}
	}
	if err := v.Err(); err != nil {
		return TenantPage{}, err
	}
	if by.Scope != "" {
		// One tenant, on one page: no cursor is ever issued to pass the check above.
		t, err := s.Tenant(ctx, by.Scope)
		if ErrorCode(err) == CodeNotFound {
			return TenantPage{Items: []Tenant{}}, nil
		}
		if err != nil {
			return TenantPage{}, err
		}
		return TenantPage{Items: []Tenant{t}}, nil
	}
	list, err := s.store.ListTenants(ctx, after, limit+1)
	if err != nil {
		return TenantPage{}, internal("list tenants", err)
	}
	for i := range list {
		if list[i].ID == DefaultTenantID {
			list[i].Settings = s.tenants.cfg.Default
		}
	}
	page := TenantPage{Items: list}
	if len(list) > limit {
		page.Items = list[:limit]
		page.NextCursor = s.encodeCursor(key, list[limit-1].ID)
	}
	return page, nil
}

// AdminTenant returns a tenant the caller sees, with its effective settings.
func (s *Service) AdminTenant(ctx context.Context, by Admin, id string) (Tenant, error) {
	if !by.sees(id) {
		return Tenant{}, errNoTenant()
	}
	return s.Tenant(ctx, id)
}

// CreateTenant makes a tenant with an operator-chosen id; settings not given take their defaults. A
// caller scoped to one tenant cannot make others.
func (s *Service) CreateTenant(ctx context.Context, by Admin, id string, in TenantInput) (Tenant, error) {
	if by.Scope != "" {
		return Tenant{}, errForbidden("A key of one tenant cannot create tenants.")
	}
	var v Validation
	if !ValidTenantID(id) {
		v.Add("id", tenantIDRule)
	}
	t := Tenant{ID: id, Settings: DefaultTenantSettings()}
	in.apply(&v, &t)
	if err := v.Err(); err != nil {
		return Tenant{}, err
	}
	err := s.store.CreateTenant(ctx, &t, by.event("tenant_created", id, ""))
	if errors.Is(err, ErrConflict) {
		if _, lookErr := s.store.TenantByID(ctx, id); lookErr == nil {
			return Tenant{}, newError(CodeTenantExists, "A tenant with this id already exists.")
		}
		var v Validation
		v.Add("name", "is taken by another tenant")
		return Tenant{}, v.Err()
	}
	if err != nil {
		return Tenant{}, internal("create tenant", err)
	}
	s.tenants.forget(id)
	return t, nil
}

// UpdateTenant merges the input into a tenant the caller sees. The default tenant's settings come
// from the configuration, so only its name can change here.
func (s *Service) UpdateTenant(ctx context.Context, by Admin, id string, in TenantInput) (Tenant, error) {
	if !by.sees(id) {
		return Tenant{}, errNoTenant()
	}
	if id == DefaultTenantID && in.touchesSettings() {
		var v Validation
		v.Add("settings", "of the default tenant come from the configuration (default_tenant in config.yaml)")
		return Tenant{}, v.Err()
	}
	var invalid Validation
	t, err := s.store.UpdateTenant(ctx, id, func(t *Tenant) error {
		if id == DefaultTenantID {
			// Only the name changes; the row's settings are never read and stay as they are.
			stored := t.Settings
			t.Settings = s.tenants.cfg.Default
			in.apply(&invalid, t)
			t.Settings = stored
			return invalid.Err()
		}
		in.apply(&invalid, t)
		return invalid.Err()
	}, by.event("tenant_updated", id, ""))
	switch {
	case len(invalid) > 0:
		return Tenant{}, invalid.Err()
	case errors.Is(err, ErrNotFound):
		return Tenant{}, errNoTenant()
	case errors.Is(err, ErrConflict):
		var v Validation
		v.Add("name", "is taken by another tenant")
		return Tenant{}, v.Err()
	case err != nil:
		return Tenant{}, internal("update tenant", err)
	}
	s.tenants.forget(id)
	if id == DefaultTenantID {
		t.Settings = s.tenants.cfg.Default
	}
	return t, nil
}

// DeleteTenant removes a tenant and its admin keys. While it has users it is refused unless force is
// set, which erases them too, as DeleteUser does. A caller scoped to the tenant cannot delete it.
func (s *Service) DeleteTenant(ctx context.Context, by Admin, id string, force bool) error {
	switch {
	case !by.sees(id) || !ValidTenantID(id):
		return errNoTenant()
	case by.Scope != "":
		return errForbidden("A key of one tenant cannot delete it.")
	case id == DefaultTenantID:
		var v Validation
		v.Add("id", "is the default tenant, which cannot be deleted")
		return v.Err()
	}
	err := s.store.DeleteTenant(ctx, id, force, by.event("tenant_deleted", id, ""))
	switch {
	case errors.Is(err, ErrNotFound):
		return errNoTenant()
	case errors.Is(err, ErrConflict):
		return newError(CodeTenantHasUsers, "The tenant still has users; delete them first, or force the deletion to delete them too.")
	case err != nil:
		return internal("delete tenant", err)
	}
	s.tenants.forget(id)
	return nil
}

// checkLocale accepts "" (none) or a language tag.
func checkLocale(v *Validation, field, locale string) {
	if locale != "" && (len(locale) > 35 || !localePattern.MatchString(locale)) {
		v.Add(field, `must be a language tag such as "en" or "pt-BR"`)
	}
}
