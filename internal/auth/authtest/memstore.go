// Package authtest holds what tests of the auth rules need: an in-memory implementation of auth's
// storage ports, a settable clock, a cheap hasher, and the conformance suite every implementation of
// the ports (Postgres, SQLite, memory) is held to. It is written for tests; nothing in production
// imports it.
package authtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latch-auth/latch/internal/auth"
)

// Clock is a settable time source shared by a store and the service under test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed instant, so failures reproduce.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves time forward: how tests reach expiry without sleeping.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// MemStore implements auth.Store and auth.KeyStore in memory. One mutex makes every method atomic,
// which is the guarantee the database implementations give with conditional writes and row locks.
type MemStore struct {
	now func() time.Time

	mu        sync.Mutex
	tenants   map[string]*auth.Tenant
	users     map[string]*memUser
	codes     map[string]*memCode
	outbox    []*Mail
	sessions  map[string]*memSession
	tokens    []*memToken
	events    []auth.LoggedEvent
	failures  map[[2]string]*memFailure
	adminKeys map[string]*memAdminKey
	keys      []auth.StoredKey
	secrets   map[string][][]byte
	factors   map[string]*auth.TOTPFactor
	recovery  map[string]map[string]bool // user id → code hash → used
	fanned    int                        // events[:fanned] are fanned out to webhooks
	webhooks  []*memDelivery
}

type memUser struct {
	auth.User
	hash string
}

type memCode struct {
	auth.EmailCode
	pendingHash string
	usedAt      *time.Time
	createdAt   time.Time
}

type memSession struct {
	auth.Session
	reason string
}

type memToken struct {
	id         int
	sessionID  string
	parent     int // 0: first of its chain
	hash       string
	createdAt  time.Time
	usedAt     *time.Time
	lastUsedAt *time.Time
	kept       bool
}

type memAdminKey struct {
	auth.AdminKey
	hash string
}

type memFailure struct {
	failures    int
	lockedUntil time.Time
}

// Mail is a queued email as the in-memory outbox keeps it.
type Mail struct {
	ID        string
	UserID    string
	CodeID    string // the code it carries, "" for none
	Purpose   string
	Template  string
	To        string
	Data      string
	CreatedAt time.Time
}

// NewMemStore is an empty store with the default tenant, on the clock now.
func NewMemStore(now func() time.Time) *MemStore {
	def := &auth.Tenant{ID: auth.DefaultTenantID, Name: auth.DefaultTenantID, Settings: auth.DefaultTenantSettings(), CreatedAt: now().UTC()}
	return &MemStore{now: now, tenants: map[string]*auth.Tenant{def.ID: def}, users: map[string]*memUser{},
		codes: map[string]*memCode{}, sessions: map[string]*memSession{}, failures: map[[2]string]*memFailure{},
		secrets: map[string][][]byte{}, factors: map[string]*auth.TOTPFactor{}, recovery: map[string]map[string]bool{},
		adminKeys: map[string]*memAdminKey{}}
}

var (
	_ auth.Store    = (*MemStore)(nil)
	_ auth.KeyStore = (*MemStore)(nil)
)

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// at is the store's clock at the precision both databases keep.
func (m *MemStore) at() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// Outbox lists the mail queued so far, oldest first.
func (m *MemStore) Outbox() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Mail, 0, len(m.outbox))
	for _, x := range m.outbox {
		out = append(out, *x)
	}
	return out
}

// Events lists the security events recorded so far, oldest first.
func (m *MemStore) Events() []auth.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]auth.Event, 0, len(m.events))
	for _, e := range m.events {
		out = append(out, e.Event)
	}
	return out
}

func cloneTenant(t auth.Tenant) auth.Tenant {
	t.Settings.AllowedOrigins = slices.Clone(t.Settings.AllowedOrigins)
	t.Settings.Routes = slices.Clone(t.Settings.Routes)
	return t
}

func (m *MemStore) CreateTenant(_ context.Context, t *auth.Tenant, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tenantNameTaken(t.Name, "") || m.tenants[t.ID] != nil {
		return auth.ErrConflict
	}
	t.CreatedAt = m.at()
	c := cloneTenant(*t)
	m.tenants[t.ID] = &c
	m.event(ev)
	return nil
}

func (m *MemStore) tenantNameTaken(name, exceptID string) bool {
	for _, x := range m.tenants {
		if x.Name == name && x.ID != exceptID {
			return true
		}
	}
	return false
}

func (m *MemStore) TenantByID(_ context.Context, id string) (auth.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tenants[id]; ok {
		return cloneTenant(*t), nil
	}
	return auth.Tenant{}, auth.ErrNotFound
}

func (m *MemStore) ListTenants(_ context.Context, after string, limit int) ([]auth.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []auth.Tenant{}
	for _, t := range m.tenants {
		if t.ID > after {
			out = append(out, cloneTenant(*t))
		}
	}
	slices.SortFunc(out, func(a, b auth.Tenant) int { return strings.Compare(a.ID, b.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *MemStore) UpdateTenant(_ context.Context, id string, apply func(*auth.Tenant) error, ev auth.Event) (auth.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return auth.Tenant{}, auth.ErrNotFound
	}
	next := cloneTenant(*t)
	if err := apply(&next); err != nil {
		return auth.Tenant{}, err
	}
	if m.tenantNameTaken(next.Name, id) {
		return auth.Tenant{}, auth.ErrConflict
	}
	*t = cloneTenant(next)
	m.event(ev)
	return next, nil
}

func (m *MemStore) DeleteTenant(_ context.Context, id string, withUsers bool, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tenants[id] == nil {
		return auth.ErrNotFound
	}
	for uid, u := range m.users {
		if u.TenantID != id {
			continue
		}
		if !withUsers {
			return auth.ErrConflict
		}
		m.eraseUser(uid)
	}
	for k := range m.failures {
		if strings.HasPrefix(k[0], id+":") {
			delete(m.failures, k)
		}
	}
	for kid, k := range m.adminKeys {
		if k.TenantID == id {
			delete(m.adminKeys, kid)
		}
	}
	delete(m.tenants, id)
	m.event(ev)
	return nil
}

// eraseUser erases a user as the databases do (see auth.Users.DeleteUser).
func (m *MemStore) eraseUser(userID string) {
	m.forgetAddress(userID)
	m.deleteUser(userID)
}

// forgetAddress takes the user's current address out of the event log and the throttle, as an
// erasure and an email change do.
func (m *MemStore) forgetAddress(userID string) {
	u := m.users[userID]
	email := strings.ToLower(u.Email)
	for i := range m.events {
		e := &m.events[i]
		switch {
		case e.UserID == userID && strings.Contains(strings.ToLower(e.Detail), email):
			e.Detail = strings.ReplaceAll(strings.ToLower(e.Detail), email, "[erased]")
		case e.UserID == "" && (e.TenantID == "" || e.TenantID == u.TenantID) && strings.ToLower(e.Detail) == email:
			e.Detail = "[erased]"
		}
	}
	for k := range m.failures {
		if k[0] == u.TenantID+":"+email {
			delete(m.failures, k)
		}
	}
}

// deleteUser removes a user and what the databases delete with it by cascade.
func (m *MemStore) deleteUser(userID string) {
	delete(m.users, userID)
	for id, c := range m.codes {
		if c.UserID == userID {
			delete(m.codes, id)
		}
	}
	m.outbox = slices.DeleteFunc(m.outbox, func(x *Mail) bool { return x.UserID == userID })
	delete(m.factors, userID)
	delete(m.recovery, userID)
	for sid, s := range m.sessions {
		if s.UserID == userID {
			delete(m.sessions, sid)
			m.tokens = slices.DeleteFunc(m.tokens, func(t *memToken) bool { return t.sessionID == sid })
		}
	}
}

func (m *MemStore) UpdateUser(_ context.Context, userID string, ch auth.UserChanges, ev auth.Event) (auth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.users[userID]
	if !ok {
		return auth.User{}, auth.ErrNotFound
	}
	if ch.Role != nil {
		x.Role = *ch.Role
	}
	if ch.Metadata != nil {
		x.Metadata = slices.Clone(ch.Metadata)
	}
	now := m.at()
	if ch.Status != nil {
		x.Status = *ch.Status
		if x.Status == auth.StatusDisabled {
			m.revokeUserSessions(userID, "", "disabled", now)
		}
	}
	if ch.EmailVerified != nil {
		switch {
		case !*ch.EmailVerified:
			x.EmailVerifiedAt = nil
		case x.EmailVerifiedAt == nil:
			x.EmailVerifiedAt = &now
		}
	}
	x.UpdatedAt = now
	m.event(ev)
	return m.user(x), nil
}

func (m *MemStore) ListUsers(_ context.Context, q auth.UserQuery) ([]auth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type keyed struct {
		tenant, email string
		u             auth.User
	}
	var all []keyed
	for _, x := range m.users {
		email := strings.ToLower(x.Email)
		switch {
		case q.TenantID != "" && x.TenantID != q.TenantID,
			!strings.HasPrefix(email, q.EmailPrefix),
			q.Disabled != nil && *q.Disabled != (x.Status == auth.StatusDisabled),
			q.AfterEmail != "" && (x.TenantID < q.AfterTenant || x.TenantID == q.AfterTenant && email <= q.AfterEmail):
			continue
		}
		all = append(all, keyed{x.TenantID, email, m.user(x)})
	}
	slices.SortFunc(all, func(a, b keyed) int {
		if c := strings.Compare(a.tenant, b.tenant); c != 0 {
			return c
		}
		return strings.Compare(a.email, b.email)
	})
	out := []auth.User{}
	for _, k := range all {
		if len(out) == q.Limit {
			break
		}
		out = append(out, k.u)
	}
	return out, nil
}

func (m *MemStore) DeleteUser(_ context.Context, userID string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[userID]; !ok {
		return auth.ErrNotFound
	}
	m.eraseUser(userID)
	m.event(ev)
	return nil
}

func (m *MemStore) CreateUser(_ context.Context, u *auth.User, passwordHash string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if u.ID == "" {
		u.ID = newID()
	}
	if u.TenantID == "" {
		u.TenantID = auth.DefaultTenantID
	}
	if u.Status == "" {
		u.Status = auth.StatusActive
	}
	if u.Role == "" {
		u.Role = auth.DefaultRole
	}
	if len(u.Metadata) == 0 {
		u.Metadata = json.RawMessage("{}")
	}
	if m.tenants[u.TenantID] == nil {
		return errForeignKey
	}
	for _, x := range m.users {
		if x.TenantID == u.TenantID && strings.EqualFold(x.Email, u.Email) {
			return auth.ErrConflict
		}
	}
	u.CreatedAt, u.UpdatedAt = now, now
	m.users[u.ID] = &memUser{User: *u, hash: passwordHash}
	ev.UserID, ev.TenantID = u.ID, u.TenantID
	m.event(ev)
	return nil
}

type memError string

func (e memError) Error() string { return string(e) }

// errForeignKey stands for the database refusing a row whose tenant does not exist.
const errForeignKey = memError("authtest: no such tenant")

func (m *MemStore) UserByEmail(_ context.Context, tenantID, email string) (auth.Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.users {
		if x.TenantID == tenantID && strings.EqualFold(x.Email, email) {
			return auth.Credential{User: m.user(x), PasswordHash: x.hash}, nil
		}
	}
	return auth.Credential{}, auth.ErrNotFound
}

func (m *MemStore) UserByID(_ context.Context, id string) (auth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := m.users[id]; ok {
		return m.user(x), nil
	}
	return auth.User{}, auth.ErrNotFound
}

// user is the account as the stores hand it out, with whether its authenticator is on.
func (m *MemStore) user(x *memUser) auth.User {
	u := x.User
	f, ok := m.factors[u.ID]
	u.TOTPEnabled = ok && f.EnabledAt != nil
	return u
}

func (m *MemStore) SetPasswordHash(_ context.Context, userID, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.users[userID]
	if !ok {
		return auth.ErrNotFound
	}
	x.hash, x.UpdatedAt = hash, m.at()
	return nil
}

func (m *MemStore) SetUserStatus(_ context.Context, userID, status string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.users[userID]
	if !ok {
		return auth.ErrNotFound
	}
	now := m.at()
	x.Status, x.UpdatedAt = status, now
	if status == auth.StatusDisabled {
		m.revokeUserSessions(userID, "", "disabled", now)
	}
	m.event(ev)
	return nil
}

func (m *MemStore) UpdatePassword(_ context.Context, p auth.PasswordUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if p.CodeID != "" {
		if err := m.consumeCode(p.CodeID, now); err != nil {
			return err
		}
	}
	x, ok := m.users[p.UserID]
	if !ok {
		return auth.ErrNotFound
	}
	x.hash, x.UpdatedAt = p.Hash, now
	m.revokeUserSessions(p.UserID, p.KeepSessionID, p.Reason, now)
	if err := m.enqueue(p.UserID, auth.PurposeNotice, p.Mail, false, now); err != nil {
		return err
	}
	m.event(p.Event)
	return nil
}

func (m *MemStore) IssueCode(_ context.Context, p auth.IssueCode) (auth.Issued, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if _, ok := m.users[p.UserID]; !ok {
		return auth.Issued{}, auth.ErrNotFound
	}
	var last *Mail
	var window []time.Time
	for _, x := range m.outbox {
		if x.UserID != p.UserID || x.Purpose != p.Purpose {
			continue
		}
		if last == nil || !x.CreatedAt.Before(last.CreatedAt) {
			last = x
		}
		if x.CreatedAt.After(now.Add(-time.Hour)) {
			window = append(window, x.CreatedAt)
		}
	}
	// A code its owner used ends the cooldown it started (a replaced code has a newer email).
	used := func(x *Mail) bool { c := m.codes[x.CodeID]; return c != nil && c.usedAt != nil }
	if last != nil && !used(last) && now.Before(last.CreatedAt.Add(p.Cooldown)) {
		return auth.Issued{}, &auth.LimitError{Cooldown: true, RetryAfter: last.CreatedAt.Add(p.Cooldown).Sub(now)}
	}
	if len(window) >= p.MaxPerHour {
		slices.SortFunc(window, time.Time.Compare)
		return auth.Issued{}, &auth.LimitError{RetryAfter: window[len(window)-p.MaxPerHour].Add(time.Hour).Sub(now)}
	}
	var out auth.Issued
	if p.CodeHash != nil {
		for _, c := range m.codes {
			if c.UserID == p.UserID && c.Purpose == p.Purpose && c.usedAt == nil {
				c.usedAt = &now
				out.Replaced = true
			}
		}
		c := &memCode{EmailCode: auth.EmailCode{ID: newID(), UserID: p.UserID, Purpose: p.Purpose, Hash: slices.Clone(p.CodeHash),
			MaxAttempts: p.MaxAttempts, ExpiresAt: now.Add(p.TTL), PendingEmail: p.PendingEmail}, pendingHash: p.PendingPasswordHash, createdAt: now}
		m.codes[c.ID] = c
		out.CodeID = c.ID
	}
	if err := m.enqueue(p.UserID, p.Purpose, p.Mail, out.Replaced, now); err != nil {
		return auth.Issued{}, err
	}
	out.OutboxID = m.outbox[len(m.outbox)-1].ID
	m.outbox[len(m.outbox)-1].CodeID = out.CodeID
	m.event(p.Event)
	return out, nil
}

func (m *MemStore) enqueue(userID, purpose string, e auth.Email, replaced bool, now time.Time) error {
	data, err := e.Data(replaced)
	if err != nil {
		return err
	}
	m.outbox = append(m.outbox, &Mail{ID: newID(), UserID: userID, Purpose: purpose, Template: e.Template, To: e.To, Data: data, CreatedAt: now})
	return nil
}

func (m *MemStore) LiveCode(_ context.Context, userID, purpose string) (auth.EmailCode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.codes {
		if c.UserID == userID && c.Purpose == purpose && c.usedAt == nil {
			return c.EmailCode, nil
		}
	}
	return auth.EmailCode{}, auth.ErrNotFound
}

func (m *MemStore) CountCodeAttempt(_ context.Context, codeID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[codeID]
	if !ok || c.usedAt != nil || !m.at().Before(c.ExpiresAt) || c.Attempts >= c.MaxAttempts {
		return 0, auth.ErrCodeDead
	}
	c.Attempts++
	return c.Attempts, nil
}

// consumeCode marks a code used exactly once; a signup code's pending password takes effect.
func (m *MemStore) consumeCode(codeID string, now time.Time) error {
	c, ok := m.codes[codeID]
	if !ok || c.usedAt != nil || !now.Before(c.ExpiresAt) {
		return auth.ErrCodeDead
	}
	c.usedAt = &now
	if c.pendingHash != "" {
		if u, ok := m.users[c.UserID]; ok {
			u.hash, u.UpdatedAt = c.pendingHash, now
		}
	}
	return nil
}

func (m *MemStore) OpenSession(_ context.Context, p auth.NewSession) (auth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if p.CodeID != "" {
		if err := m.consumeCode(p.CodeID, now); err != nil {
			return auth.Session{}, err
		}
	}
	u, ok := m.users[p.UserID]
	if !ok {
		return auth.Session{}, auth.ErrNotFound
	}
	if p.MarkVerified && u.EmailVerifiedAt == nil {
		u.EmailVerifiedAt, u.UpdatedAt = &now, now
	}
	if p.PasswordHash != "" {
		u.hash, u.UpdatedAt = p.PasswordHash, now
	}
	s := auth.Session{ID: newID(), UserID: p.UserID, TenantID: p.TenantID, AMR: p.AMR, IP: p.IP, UserAgent: p.UserAgent, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(p.MaxAge)}
	s.IdleExpiresAt = auth.SessionEnd(now, s.ExpiresAt, p.IdleTTL)
	m.sessions[s.ID] = &memSession{Session: s}
	m.tokens = append(m.tokens, &memToken{id: len(m.tokens) + 1, sessionID: s.ID, hash: string(p.RefreshHash), createdAt: now, kept: !p.RefreshRotation})
	ev := p.Event
	ev.SessionID = s.ID
	m.event(ev)
	return s, nil
}

func (m *MemStore) token(hash []byte) *memToken {
	for _, t := range m.tokens {
		if t.hash == string(hash) {
			return t
		}
	}
	return nil
}

// Rotate follows auth.ClassifyRefresh literally: it rotates exactly when the verdict is rotate, and
// records the token's use when it is keep.
func (m *MemStore) Rotate(_ context.Context, oldHash, newHash []byte, idleTTL time.Duration) (auth.Rotated, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	st, ok := m.state(oldHash)
	if !ok {
		return auth.Rotated{}, auth.ErrNotFound
	}
	verdict := auth.ClassifyRefresh(&st, now, auth.RefreshRules{IdleTTL: idleTTL})
	if verdict != auth.RefreshRotate && verdict != auth.RefreshKeep {
		return auth.Rotated{}, auth.ErrNotFound
	}
	old := m.token(oldHash)
	old.lastUsedAt = &now
	if verdict == auth.RefreshRotate {
		old.usedAt = &now
		m.tokens = append(m.tokens, &memToken{id: len(m.tokens) + 1, sessionID: old.sessionID, parent: old.id, hash: string(newHash), createdAt: now})
	}
	s := m.sessions[old.sessionID]
	s.LastUsedAt = now
	s.IdleExpiresAt = auth.SessionEnd(now, s.ExpiresAt, idleTTL)
	u := m.users[s.UserID]
	return auth.Rotated{SessionID: s.ID, UserID: s.UserID, TenantID: s.TenantID, Email: u.Email, Role: u.Role, AMR: s.AMR,
		ExpiresAt: s.ExpiresAt, Kept: verdict == auth.RefreshKeep, SessionStart: s.CreatedAt}, nil
}

func (m *MemStore) RefreshState(_ context.Context, hash []byte) (auth.RefreshState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state(hash)
	if !ok {
		return st, auth.ErrNotFound
	}
	return st, nil
}

func (m *MemStore) state(hash []byte) (auth.RefreshState, bool) {
	t := m.token(hash)
	if t == nil {
		return auth.RefreshState{}, false
	}
	s := m.sessions[t.sessionID]
	u := m.users[s.UserID]
	st := auth.RefreshState{TokenCreatedAt: t.createdAt, TokenLastUsedAt: t.lastUsedAt, UsedAt: t.usedAt, SessionID: s.ID,
		UserID: s.UserID, TenantID: s.TenantID, Email: u.Email, Role: u.Role, AMR: s.AMR, UserStatus: u.Status,
		RevokedAt: s.RevokedAt, ExpiresAt: s.ExpiresAt, SessionStart: s.CreatedAt, Kept: t.kept}
	for _, x := range m.tokens {
		if x.sessionID == s.ID && x.usedAt == nil {
			st.NewestTokenAt = x.createdAt
			if x.lastUsedAt != nil && x.lastUsedAt.After(x.createdAt) {
				st.NewestTokenAt = *x.lastUsedAt
			}
		}
		if x.parent == t.id {
			st.SuccessorHash, st.SuccessorUsedAt = []byte(x.hash), x.usedAt
		}
	}
	return st, true
}

func (m *MemStore) SessionForRefresh(_ context.Context, hash []byte) (auth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.token(hash); t != nil {
		return m.sessions[t.sessionID].Session, nil
	}
	return auth.Session{}, auth.ErrNotFound
}

func (m *MemStore) RevokeSession(_ context.Context, userID, sessionID, reason string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[sessionID]
	if !ok || s.UserID != userID || s.RevokedAt != nil {
		return auth.ErrNotFound
	}
	now := m.at()
	s.RevokedAt, s.reason = &now, reason
	ev.SessionID = sessionID
	m.event(ev)
	return nil
}

func (m *MemStore) RevokeUserSessions(_ context.Context, userID, exceptSessionID, reason string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revokeUserSessions(userID, exceptSessionID, reason, m.at())
	m.event(ev)
	return nil
}

func (m *MemStore) revokeUserSessions(userID, exceptSessionID, reason string, now time.Time) {
	for _, s := range m.sessions {
		if s.UserID == userID && s.RevokedAt == nil && s.ID != exceptSessionID {
			s.RevokedAt, s.reason = &now, reason
		}
	}
}

func (m *MemStore) live(s *memSession, now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt)
}

func (m *MemStore) LiveSession(_ context.Context, sessionID string) (auth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[sessionID]; ok && m.live(s, m.at()) {
		return s.Session, nil
	}
	return auth.Session{}, auth.ErrNotFound
}

func (m *MemStore) ListSessions(_ context.Context, userID string) ([]auth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	var out []auth.Session
	for _, s := range m.sessions {
		if s.UserID == userID && m.live(s, now) {
			out = append(out, s.Session)
		}
	}
	slices.SortFunc(out, func(a, b auth.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (m *MemStore) LockedUntil(_ context.Context, subject, ip string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	var wait time.Duration
	for _, key := range [][2]string{{subject, ip}, {subject, ""}} {
		if f, ok := m.failures[key]; ok && f.lockedUntil.After(now) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait, nil
}

func (m *MemStore) RecordFailure(_ context.Context, subject, ip string, lock func(auth.FailureCounts) (time.Duration, time.Duration), ev auth.Event) (auth.FailureCounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	bump := func(ip string) *memFailure {
		f, ok := m.failures[[2]string{subject, ip}]
		if !ok {
			f = &memFailure{}
			m.failures[[2]string{subject, ip}] = f
		}
		f.failures++
		return f
	}
	perIP, total := bump(ip), bump("")
	c := auth.FailureCounts{PerIP: perIP.failures, Total: total.failures}
	ipWait, totalWait := lock(c)
	if ipWait > 0 {
		perIP.lockedUntil = now.Add(ipWait)
	}
	if totalWait > 0 {
		total.lockedUntil = now.Add(totalWait)
	}
	m.event(ev)
	return c, nil
}

func (m *MemStore) ResetFailures(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.failures {
		if k[0] == subject {
			delete(m.failures, k)
		}
	}
	return nil
}

func (m *MemStore) RecordEvent(_ context.Context, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.event(ev)
	return nil
}

func (m *MemStore) event(ev auth.Event) {
	if ev.Kind == "" {
		return
	}
	if u, ok := m.users[ev.UserID]; ok && ev.TenantID == "" {
		ev.TenantID = u.TenantID
	}
	m.events = append(m.events, auth.LoggedEvent{ID: int64(len(m.events) + 1), Event: ev, CreatedAt: m.at()})
}

func (m *MemStore) ListEvents(_ context.Context, q auth.EventQuery) ([]auth.LoggedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []auth.LoggedEvent{}
	for i := len(m.events) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := m.events[i]
		switch {
		case q.TenantID != "" && e.TenantID != q.TenantID,
			q.UserID != "" && e.UserID != q.UserID,
			q.Kind != "" && e.Kind != q.Kind,
			!q.Since.IsZero() && e.CreatedAt.Before(q.Since),
			!q.Until.IsZero() && !e.CreatedAt.Before(q.Until),
			q.BeforeID > 0 && e.ID >= q.BeforeID:
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func (m *MemStore) CreateAdminKey(_ context.Context, k *auth.AdminKey, hash []byte, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k.TenantID != "" && m.tenants[k.TenantID] == nil {
		return auth.ErrNotFound
	}
	if k.ID == "" {
		k.ID = newID()
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = m.at(), nil, nil
	m.adminKeys[k.ID] = &memAdminKey{AdminKey: *k, hash: string(hash)}
	m.event(ev)
	return nil
}

func (m *MemStore) AdminKeyByHash(_ context.Context, hash []byte) (auth.AdminKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.adminKeys {
		if k.hash == string(hash) {
			return k.AdminKey, nil
		}
	}
	return auth.AdminKey{}, auth.ErrNotFound
}

func (m *MemStore) ListAdminKeys(context.Context) ([]auth.AdminKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []auth.AdminKey{}
	for _, k := range m.adminKeys {
		out = append(out, k.AdminKey)
	}
	slices.SortFunc(out, func(a, b auth.AdminKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (m *MemStore) RevokeAdminKey(_ context.Context, id string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.adminKeys[id]
	if !ok || k.RevokedAt != nil {
		return auth.ErrNotFound
	}
	now := m.at()
	k.RevokedAt = &now
	m.event(ev)
	return nil
}

func (m *MemStore) TouchAdminKey(_ context.Context, id string, interval time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if k, ok := m.adminKeys[id]; ok && (k.LastUsedAt == nil || k.LastUsedAt.Before(now.Add(-interval))) {
		k.LastUsedAt = &now
	}
	return nil
}

func (m *MemStore) SigningKeys(_ context.Context, since time.Time) ([]auth.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []auth.StoredKey
	for _, k := range m.keys {
		if k.RetiredAt == nil || k.RetiredAt.After(since) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m *MemStore) AddSigningKey(_ context.Context, k auth.StoredKey, retireOthers bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	if retireOthers {
		for i := range m.keys {
			if m.keys[i].Alg == k.Alg && m.keys[i].RetiredAt == nil {
				m.keys[i].RetiredAt = &now
			}
		}
	}
	k.CreatedAt = now
	m.keys = append(m.keys, k)
	return nil
}

func (m *MemStore) Secrets(_ context.Context, name string, gen func() ([]byte, error)) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.secrets[name]; ok {
		return v, nil
	}
	v, err := gen()
	if err != nil {
		return nil, err
	}
	m.secrets[name] = [][]byte{v}
	return m.secrets[name], nil
}

func (m *MemStore) SetPendingTOTP(_ context.Context, userID string, sealed []byte, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[userID]; !ok {
		return auth.ErrNotFound
	}
	f, ok := m.factors[userID]
	if ok && f.EnabledAt != nil {
		return auth.ErrConflict
	}
	if !ok {
		f = &auth.TOTPFactor{UserID: userID}
		m.factors[userID] = f
	}
	f.Secret = slices.Clone(sealed)
	m.event(ev)
	return nil
}

func (m *MemStore) TOTPFactor(_ context.Context, userID string) (auth.TOTPFactor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.factors[userID]; ok {
		out := *f
		out.Secret = slices.Clone(f.Secret)
		return out, nil
	}
	return auth.TOTPFactor{}, auth.ErrNotFound
}

func (m *MemStore) EnableTOTP(_ context.Context, p auth.EnableTOTP) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.factors[p.UserID]
	if !ok || f.EnabledAt != nil || string(f.Secret) != string(p.Sealed) || f.LastStep >= p.Step {
		return auth.ErrNotFound
	}
	now := m.at()
	f.EnabledAt, f.LastStep = &now, p.Step
	codes := map[string]bool{}
	for _, h := range p.RecoveryHashes {
		codes[h] = false
	}
	m.recovery[p.UserID] = codes
	m.event(p.Event)
	return nil
}

func (m *MemStore) AcceptTOTPStep(_ context.Context, userID string, step int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.factors[userID]
	if !ok || f.EnabledAt == nil || f.LastStep >= step {
		return auth.ErrNotFound
	}
	f.LastStep = step
	return nil
}

func (m *MemStore) UseRecoveryCode(_ context.Context, userID string, hashes []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.factors[userID]; !ok || f.EnabledAt == nil {
		return auth.ErrNotFound
	}
	codes := m.recovery[userID]
	for _, h := range hashes {
		if used, ok := codes[h]; ok && !used {
			codes[h] = true
			return nil
		}
	}
	return auth.ErrNotFound
}

func (m *MemStore) ResealTOTP(_ context.Context, userID string, old, sealed []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.factors[userID]
	if !ok || string(f.Secret) != string(old) {
		return auth.ErrNotFound
	}
	f.Secret = slices.Clone(sealed)
	return nil
}

func (m *MemStore) DisableTOTP(_ context.Context, userID string, ev auth.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.factors[userID]; !ok || f.EnabledAt == nil {
		return auth.ErrNotFound
	}
	delete(m.factors, userID)
	delete(m.recovery, userID)
	m.event(ev)
	return nil
}

func (m *MemStore) ChangeEmail(_ context.Context, c auth.EmailChange) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	x, ok := m.users[c.UserID]
	if !ok {
		return auth.ErrNotFound
	}
	// As in the databases: a dead code is refused before the address is written.
	if code, ok := m.codes[c.CodeID]; !ok || code.usedAt != nil || !now.Before(code.ExpiresAt) {
		return auth.ErrCodeDead
	}
	for _, o := range m.users {
		if o.ID != x.ID && o.TenantID == x.TenantID && strings.EqualFold(o.Email, c.NewEmail) {
			return auth.ErrConflict
		}
	}
	if err := m.consumeCode(c.CodeID, now); err != nil {
		return err
	}
	m.forgetAddress(c.UserID)
	x.Email, x.EmailVerifiedAt, x.UpdatedAt = c.NewEmail, &now, now
	if err := m.enqueue(c.UserID, auth.PurposeNotice, c.Mail, false, now); err != nil {
		return err
	}
	m.event(c.Event)
	return nil
}

func (m *MemStore) UserData(_ context.Context, userID string) (auth.UserData, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.users[userID]
	if !ok {
		return auth.UserData{}, auth.ErrNotFound
	}
	d := auth.UserData{User: m.user(x), Sessions: []auth.Session{}, Codes: []auth.CodeInfo{}, Mail: []auth.MailInfo{}, Events: []auth.LoggedEvent{}}
	for _, s := range m.sessions {
		if s.UserID == userID {
			d.Sessions = append(d.Sessions, s.Session)
		}
	}
	slices.SortFunc(d.Sessions, func(a, b auth.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, c := range m.codes {
		if c.UserID == userID && c.usedAt == nil {
			d.Codes = append(d.Codes, auth.CodeInfo{Purpose: c.Purpose, Attempts: c.Attempts, MaxAttempts: c.MaxAttempts,
				CreatedAt: c.createdAt, ExpiresAt: c.ExpiresAt})
		}
	}
	slices.SortFunc(d.Codes, func(a, b auth.CodeInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	// The in-memory outbox sends nothing: every message is still queued.
	for _, o := range m.outbox {
		if o.UserID == userID {
			d.Mail = append(d.Mail, auth.MailInfo{Template: o.Template, Purpose: o.Purpose, To: o.To, CreatedAt: o.CreatedAt})
		}
	}
	for i := len(m.events) - 1; i >= 0; i-- {
		if m.events[i].UserID == userID {
			d.Events = append(d.Events, m.events[i])
		}
	}
	return d, nil
}
