package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latch-auth/latch/internal/mail"
)

// The operator's view of users, sessions and the event log, for the admin API and the command line.
// Every method takes the caller (Admin): what lies outside its scope answers as if it did not exist,
// and every change is recorded as an event naming the caller.

// AdminWithin narrows the caller to the tenant of a request under /t/{tenant}, which must exist.
func (s *Service) AdminWithin(ctx context.Context, by Admin, tenantID string) (Admin, error) {
	narrowed, err := by.Within(tenantID)
	if err != nil || tenantID == "" {
		return narrowed, err
	}
	if _, err := s.Tenant(ctx, tenantID); err != nil {
		return Admin{}, err
	}
	return narrowed, nil
}

// tenantFilter is the tenant a listing is narrowed to: the one asked for, which must exist and be in
// the caller's scope, else the scope ("" for every tenant).
func (s *Service) tenantFilter(ctx context.Context, by Admin, id string) (string, error) {
	if id == "" {
		return by.Scope, nil
	}
	if !by.sees(id) {
		return "", errNoTenant()
	}
	if _, err := s.Tenant(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// User returns a user the caller sees.
func (s *Service) User(ctx context.Context, by Admin, userID string) (User, error) {
	u, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, ErrNotFound) || err == nil && !by.sees(u.TenantID) {
		return User{}, errNoUser()
	}
	if err != nil {
		return User{}, internal("load user", err)
	}
	return u, nil
}

// FindUser returns the user of an email in a tenant ("" for the default), for callers that name
// users by address (the command line).
func (s *Service) FindUser(ctx context.Context, by Admin, tenantID, email string) (User, error) {
	var v Validation
	email = normalizeEmail(&v, "email", email)
	tenant, err := s.bodyTenant(ctx, &v, by, tenantID)
	if err != nil {
		return User{}, err
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	u, err := s.lookup(ctx, tenant.ID, email)
	if err != nil {
		return User{}, err
	}
	if u == nil {
		return User{}, newError(CodeNotFound, "No account has that email in this tenant.")
	}
	return *u, nil
}

// bodyTenant resolves a tenant named in a request body: "" is the caller's scope, else the default
// tenant. One outside the scope is refused exactly like one that does not exist.
func (s *Service) bodyTenant(ctx context.Context, v *Validation, by Admin, id string) (Tenant, error) {
	if id == "" {
		id = by.Scope
	}
	if !by.sees(id) {
		v.Add("tenantId", "is not a known tenant")
		return Tenant{}, nil
	}
	return s.requestTenant(ctx, v, id)
}

// UserFilter narrows the user listing.
type UserFilter struct {
	TenantID    string // "" every tenant the caller sees
	EmailPrefix string
	Disabled    *bool // nil: both
}

// UserPage is a page of the user listing.
type UserPage struct {
	Items      []User
	NextCursor string // "" on the last page
}

// ListUsers lists users in (tenant id, email) order, one page at a time.
func (s *Service) ListUsers(ctx context.Context, by Admin, f UserFilter, p PageRequest) (UserPage, error) {
	var v Validation
	limit := p.limit(&v)
	prefix := strings.ToLower(strings.TrimSpace(f.EmailPrefix))
	if len(prefix) > maxEmailLen || !printable(prefix) {
		v.Add("emailPrefix", "must be at most 254 printable characters")
	}
	disabled := "any"
	if f.Disabled != nil {
		disabled = strconv.FormatBool(*f.Disabled)
	}
	tenant, err := s.tenantFilter(ctx, by, f.TenantID)
	key := listing("users", by.Scope, tenant, prefix, disabled)
	var after []string
	if p.Cursor != "" {
		after = s.decodeCursor(&v, p.Cursor, key, 2)
	}
	if err := v.Err(); err != nil {
		return UserPage{}, err
	}
	if err != nil {
		return UserPage{}, err
	}
	q := UserQuery{TenantID: tenant, EmailPrefix: prefix, Disabled: f.Disabled, Limit: limit + 1}
	if after != nil {
		q.AfterTenant, q.AfterEmail = after[0], after[1]
	}
	users, err := s.store.ListUsers(ctx, q)
	if err != nil {
		return UserPage{}, internal("list users", err)
	}
	page := UserPage{Items: users}
	if len(users) > limit {
		page.Items = users[:limit]
		last := users[limit-1]
		page.NextCursor = s.encodeCursor(key, last.TenantID, strings.ToLower(last.Email))
	}
	return page, nil
}

// NewUser is an account an operator creates.
type NewUser struct {
	TenantID string // "" the caller's scope, else the default tenant
	Email    string
	// Password is required unless Invite is set; an invitee without one chooses it when accepting.
	Password      string
	Role          *string
	Metadata      json.RawMessage
	EmailVerified bool // the operator vouches for the address
	// Invite emails a sign-up code to the address: the invitee accepts it with validate-register
	// (and a password of their choosing), which verifies the address.
	Invite bool
	// Locale is the language of the user's emails, the invitation first ("" = the tenant's).
	Locale string
}

// CreateUser makes an active account under the same email and password rules as registration.
func (s *Service) CreateUser(ctx context.Context, by Admin, in NewUser) (User, error) {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	if in.Password != "" || !in.Invite {
		s.checkNewPassword(&v, "password", in.Password)
	}
	ch := checkUserInput(&v, UserInput{Role: in.Role, Metadata: in.Metadata})
	checkLocale(&v, "locale", in.Locale)
	if in.Invite && in.EmailVerified {
		v.Add("invite", "cannot go to an address marked verified: accepting the invitation is what verifies it")
	}
	tenant, err := s.bodyTenant(ctx, &v, by, in.TenantID)
	if err != nil {
		return User{}, err
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	password := in.Password
	if password == "" {
		// An invitee has no password until they choose one: a random one nobody knows keeps the
		// password check the same for every account.
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return User{}, internal("draw password", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, hashErr("hash password", err)
	}
	u := User{TenantID: tenant.ID, Email: email, Metadata: ch.Metadata, Locale: in.Locale}
	if ch.Role != nil {
		u.Role = *ch.Role
	}
	if in.EmailVerified {
		verified := s.Now().UTC()
		u.EmailVerifiedAt = &verified
	}
	err = s.store.CreateUser(ctx, &u, hash, by.event("user_created", tenant.ID, ""))
	if errors.Is(err, ErrConflict) {
		return User{}, newError(CodeEmailTaken, "An account with this email already exists in this tenant.")
	}
	if err != nil {
		return User{}, internal("create user", err)
	}
	if in.Invite {
		ttl := s.cfg.InvitationTTL
		if ttl <= 0 {
			ttl = s.cfg.CodeTTL
		}
		if err := s.sendCodeMail(ctx, u, tenant, PurposeSignup, "", mail.Invitation, ttl, Event{}); err != nil {
			return u, err
		}
	}
	return u, nil
}

// UserInput is what an operator changes on a user; nil leaves a field as it is.
type UserInput struct {
	Role     *string
	Metadata json.RawMessage
	// Disabled true ends every session of the user at once; false enables the account again.
	Disabled      *bool
	EmailVerified *bool
}

// checkUserInput validates role and metadata and returns them as the store takes them.
func checkUserInput(v *Validation, in UserInput) UserChanges {
	var ch UserChanges
	if in.Role != nil {
		role := strings.TrimSpace(*in.Role)
		if role == "" || len(role) > maxRoleLength || !rolePattern.MatchString(role) {
			v.Add("role", "must be 1 to 64 letters, digits, '_', '.', ':' or '-'")
		}
		ch.Role = &role
	}
	if in.Metadata != nil {
		ch.Metadata = jsonObject(v, "metadata", in.Metadata, MaxMetadataBytes)
	}
	return ch
}

// UpdateUser changes a user the caller sees. A new role reaches the access tokens at the user's next
// refresh or login; disabling ends every session at once.
func (s *Service) UpdateUser(ctx context.Context, by Admin, userID string, in UserInput) (User, error) {
	var v Validation
	ch := checkUserInput(&v, in)
	if err := v.Err(); err != nil {
		return User{}, err
	}
	var changed []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"role", in.Role != nil}, {"metadata", in.Metadata != nil}, {"disabled", in.Disabled != nil}, {"emailVerified", in.EmailVerified != nil}} {
		if f.set {
			changed = append(changed, f.name)
		}
	}
	if in.Disabled != nil {
		status := StatusActive
		if *in.Disabled {
			status = StatusDisabled
		}
		ch.Status = &status
	}
	ch.EmailVerified = in.EmailVerified
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return User{}, err
	}
	ev := by.event("user_updated", u.TenantID, u.ID)
	ev.Detail = strings.Join(changed, ", ")
	u, err = s.store.UpdateUser(ctx, u.ID, ch, ev)
	if errors.Is(err, ErrNotFound) {
		return User{}, errNoUser()
	}
	if err != nil {
		return User{}, internal("update user", err)
	}
	return u, nil
}

// DeleteUser erases a user the caller sees: the account and everything of theirs, the login failures
// of their address, and their address in the event log, whose entries keep the user id.
func (s *Service) DeleteUser(ctx context.Context, by Admin, userID string) error {
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return err
	}
	return s.eraseUser(ctx, u, by.event("user_deleted", u.TenantID, u.ID))
}

// eraseUser is the one way a user goes, whoever asks (an operator, or the user with DeleteAccount):
// everything of theirs is erased with the account, and ev records who did it.
func (s *Service) eraseUser(ctx context.Context, u User, ev Event) error {
	err := s.store.DeleteUser(ctx, u.ID, ev)
	if errors.Is(err, ErrNotFound) {
		return errNoUser()
	}
	if err != nil {
		return internal("delete user", err)
	}
	return nil
}

// UserSessions lists the live sessions of a user the caller sees, newest first.
func (s *Service) UserSessions(ctx context.Context, by Admin, userID string) ([]Session, error) {
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return nil, err
	}
	list, err := s.store.ListSessions(ctx, u.ID)
	if err != nil {
		return nil, internal("list sessions", err)
	}
	return list, nil
}

// RevokeUserSession ends one live session of a user the caller sees; any other id is not found.
func (s *Service) RevokeUserSession(ctx context.Context, by Admin, userID, sessionID string) error {
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return err
	}
	err = s.store.RevokeSession(ctx, u.ID, sessionID, "revoked_by_admin", by.event("session_revoked", u.TenantID, u.ID))
	if errors.Is(err, ErrNotFound) {
		return newError(CodeNotFound, "No such live session of this user.")
	}
	if err != nil {
		return internal("revoke session", err)
	}
	return nil
}

// RevokeUserSessions ends every live session of a user the caller sees.
func (s *Service) RevokeUserSessions(ctx context.Context, by Admin, userID string) error {
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return err
	}
	err = s.store.RevokeUserSessions(ctx, u.ID, "", "revoked_by_admin", by.event("sessions_revoked", u.TenantID, u.ID))
	if err != nil {
		return internal("revoke sessions", err)
	}
	return nil
}

// ResetTOTP turns off the authenticator of a user the caller sees, for a user who lost it: they log in
// with emailed codes again and may set up a new one. Their sessions stay; end them too if the device
// that held the authenticator is gone.
func (s *Service) ResetTOTP(ctx context.Context, by Admin, userID string) error {
	u, err := s.User(ctx, by, userID)
	if err != nil {
		return err
	}
	err = s.store.DisableTOTP(ctx, u.ID, by.event("totp_reset", u.TenantID, u.ID))
	if errors.Is(err, ErrNotFound) {
		return newError(CodeTOTPNotEnabled, "The user has no authenticator on.")
	}
	if err != nil {
		return internal("reset totp", err)
	}
	// The owner hears of it: someone who talked an operator into it must not go unnoticed.
	s.sendChangeNotice(ctx, u, mail.TOTPDisabled, Meta{}, true)
	return nil
}

// EventFilter narrows the event listing.
type EventFilter struct {
	TenantID string // "" every tenant the caller sees
	UserID   string
	Kind     string
	Since    time.Time // zero: no bound
	Until    time.Time // zero: no bound
}

// EventPage is a page of the event log, newest first.
type EventPage struct {
	Items      []LoggedEvent
	NextCursor string // "" on the last page
}

const maxKindLength = 64

// ListEvents reads the security event log, newest first, one page at a time.
func (s *Service) ListEvents(ctx context.Context, by Admin, f EventFilter, p PageRequest) (EventPage, error) {
	var v Validation
	limit := p.limit(&v)
	if f.UserID != "" {
		if _, err := uuid.Parse(f.UserID); err != nil {
			v.Add("userId", "must be a user id")
		}
	}
	if len(f.Kind) > maxKindLength || !printable(f.Kind) {
		v.Add("kind", "must be at most 64 printable characters")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		v.Add("until", "must be after since")
	}
	tenant, err := s.tenantFilter(ctx, by, f.TenantID)
	key := listing("events", by.Scope, tenant, f.UserID, f.Kind, stamp(f.Since), stamp(f.Until))
	var before int64
	if p.Cursor != "" {
		if pos := s.decodeCursor(&v, p.Cursor, key, 1); pos != nil {
			before, _ = strconv.ParseInt(pos[0], 10, 64) // signed by us: always a number
		}
	}
	if err := v.Err(); err != nil {
		return EventPage{}, err
	}
	if err != nil {
		return EventPage{}, err
	}
	list, err := s.store.ListEvents(ctx, EventQuery{TenantID: tenant, UserID: f.UserID, Kind: f.Kind,
		Since: f.Since, Until: f.Until, BeforeID: before, Limit: limit + 1})
	if err != nil {
		return EventPage{}, internal("list events", err)
	}
	page := EventPage{Items: list}
	if len(list) > limit {
		page.Items = list[:limit]
		page.NextCursor = s.encodeCursor(key, strconv.FormatInt(list[limit-1].ID, 10))
	}
	return page, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
