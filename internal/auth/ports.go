package auth

import (
	"context"
	"time"

	"github.com/latch-auth/latch/internal/token"
)

// The ports below are what the service needs from the outside world. Package store implements the
// storage ports on Postgres and SQLite; authtest implements them in memory for the fast tests of
// the rules. Every state change that must hold across instances is the port's job to make atomic.

// Users stores accounts.
type Users interface {
	// CreateUser inserts u with its password hash, filling ID, TenantID, Status, Role, Metadata and
	// the timestamps when empty, and records ev (when it has a Kind, with the new user's id) in the same
	// transaction. A taken email in the tenant answers ErrConflict.
	CreateUser(ctx context.Context, u *User, passwordHash string, ev Event) error
	// UserByEmail finds a user of a tenant by email, case-insensitively.
	UserByEmail(ctx context.Context, tenantID, email string) (Credential, error)
	UserByID(ctx context.Context, id string) (User, error)
	SetPasswordHash(ctx context.Context, userID, hash string) error
	// SetUserStatus enables or disables an account; disabling revokes every live session of the user
	// in the same transaction.
	SetUserStatus(ctx context.Context, userID, status string, ev Event) error
	// UpdateUser applies an admin's changes to a user with their event, and returns the user as it now
	// is; ErrNotFound for an unknown user.
	UpdateUser(ctx context.Context, userID string, ch UserChanges, ev Event) (User, error)
	// ListUsers returns the users q selects in (tenant id, email) order, at most q.Limit.
	ListUsers(ctx context.Context, q UserQuery) ([]User, error)
	// DeleteUser erases a user, atomically: the user row and everything of theirs (sessions and refresh
	// tokens, codes, factors, queued mail), the login failures of their address in their tenant, and
	// their address wherever the event log holds it (events keep their user id); then it records ev.
	// ErrNotFound for an unknown user.
	DeleteUser(ctx context.Context, userID string, ev Event) error
	// UpdatePassword applies a PasswordUpdate in one transaction. A reset code already used answers
	// ErrCodeDead.
	UpdatePassword(ctx context.Context, p PasswordUpdate) error
	// ChangeEmail consumes the code, sets the user's email to NewEmail marked verified now, queues
	// the mail and records the event, in one transaction; sessions are kept. A code already used
	// answers ErrCodeDead, an address taken in the tenant meanwhile ErrConflict.
	ChangeEmail(ctx context.Context, c EmailChange) error
	// UserData reads everything held about a user (see UserData); ErrNotFound for an unknown user.
	UserData(ctx context.Context, userID string) (UserData, error)
}

// UserQuery selects users for a listing: those of a tenant ("" every tenant) whose email starts with
// EmailPrefix (lower-case; "" any), disabled or not when Disabled is set, strictly after the position
// (AfterTenant, AfterEmail) in (tenant id, email) order when AfterEmail is set.
type UserQuery struct {
	TenantID    string
	EmailPrefix string
	Disabled    *bool
	AfterTenant string
	AfterEmail  string
	Limit       int
}

// TenantStore stores tenants. Every write records its event in the same transaction.
type TenantStore interface {
	// CreateTenant inserts t, filling CreatedAt; ErrConflict when its id or name is taken.
	CreateTenant(ctx context.Context, t *Tenant, ev Event) error
	// TenantByID returns a tenant as stored; ErrNotFound when unknown.
	TenantByID(ctx context.Context, id string) (Tenant, error)
	// ListTenants returns tenants in id order with ids after the one given ("" from the start), at
	// most limit of them (0 for all).
	ListTenants(ctx context.Context, after string, limit int) ([]Tenant, error)
	// UpdateTenant runs apply on the stored tenant and writes the result, in one transaction that no
	// other change of the tenant can interleave with; apply's error aborts it and is returned.
	// ErrNotFound when unknown, ErrConflict when the new name is taken.
	UpdateTenant(ctx context.Context, id string, apply func(*Tenant) error, ev Event) (Tenant, error)
	// DeleteTenant deletes a tenant and its admin keys; with withUsers it erases its users first as
	// DeleteUser does, otherwise a tenant with users is refused with ErrConflict, atomically.
	// ErrNotFound when unknown.
	DeleteTenant(ctx context.Context, id string, withUsers bool, ev Event) error
}

// PasswordUpdate sets a new password hash and ends sessions, in one transaction with its notice
// email and event.
type PasswordUpdate struct {
	CodeID        string // a reset code consumed by the same transaction; "" for a change
	UserID        string
	Hash          string
	KeepSessionID string // the session that made the change survives it; "" revokes all
	Reason        string
	Mail          Email
	Event         Event
}

// Codes stores emailed one-time codes and queues their mail.
type Codes interface {
	// IssueCode enforces the resend cooldown and the hourly cap of the purpose (answering *LimitError),
	// the cooldown running from the purpose's newest email unless its code was used since: a code its
	// owner typed in proves the mail arrived and was wanted, so a new one at once is no resend (the
	// hourly cap still counts it),
	// replaces any live code of the same purpose, stores the new code and queues its email, atomically
	// across instances. Each purpose has its own budget: mail anyone can trigger with an address alone
	// (a reset code, the already-registered notice) never spends the login codes of the account.
	IssueCode(ctx context.Context, p IssueCode) (Issued, error)
	// LiveCode returns the user's unused code of a purpose, which may have expired.
	LiveCode(ctx context.Context, userID, purpose string) (EmailCode, error)
	// CountCodeAttempt spends one try of a live code before its value is compared, so concurrent
	// guesses cannot exceed MaxAttempts. It returns the tries used including this one, or ErrCodeDead.
	CountCodeAttempt(ctx context.Context, codeID string) (int, error)
}

// IssueCode is a request to email a code (or, with CodeHash nil, a notice with a budget of its own,
// like the "already registered" notice).
type IssueCode struct {
	UserID   string
	Purpose  string
	CodeHash []byte
	// PendingPasswordHash, on a signup code, becomes the user's password when the code is validated,
	// so the password that takes effect is the one whose registrant proved the address.
	PendingPasswordHash string
	// PendingEmail, on an email_change code, is the address the code moves the account to.
	PendingEmail string
	TTL          time.Duration
	MaxAttempts  int
	Cooldown     time.Duration
	MaxPerHour   int
	Mail         Email
	Event        Event // recorded in the same transaction when its Kind is set
}

// Issued describes what IssueCode wrote.
type Issued struct {
	CodeID   string
	OutboxID string
	Replaced bool
}

// Sessions stores sessions and their refresh-token chains.
type Sessions interface {
	// OpenSession consumes the code (exactly one caller wins; ErrCodeDead for the others), marks the
	// email verified when asked, and creates the session with its first refresh token.
	OpenSession(ctx context.Context, p NewSession) (Session, error)
	// Rotate spends the token whose hash is oldHash and stores newHash as its successor, if and only
	// if ClassifyRefresh would say RefreshRotate for it now; when it would say RefreshKeep (a session
	// without rotation) it records the token's use instead and stores nothing new. ErrNotFound
	// otherwise. Exactly one of concurrent rotating callers on any instance wins.
	Rotate(ctx context.Context, oldHash, newHash []byte, idleTTL time.Duration) (Rotated, error)
	// RefreshState is everything ClassifyRefresh needs about a token; ErrNotFound when unknown.
	RefreshState(ctx context.Context, hash []byte) (RefreshState, error)
	// SessionForRefresh finds the session a refresh token belongs to, whatever its state.
	SessionForRefresh(ctx context.Context, hash []byte) (Session, error)
	// RevokeSession ends one live session of a user; ErrNotFound when it is not the user's, or not live.
	RevokeSession(ctx context.Context, userID, sessionID, reason string, ev Event) error
	// RevokeUserSessions ends every live session of a user except exceptSessionID ("" for none).
	RevokeUserSessions(ctx context.Context, userID, exceptSessionID, reason string, ev Event) error
	// LiveSession returns a session that is neither revoked nor expired.
	LiveSession(ctx context.Context, sessionID string) (Session, error)
	// ListSessions returns a user's live sessions, newest first.
	ListSessions(ctx context.Context, userID string) ([]Session, error)
}

// NewSession opens a session, optionally consuming the email code that proved the login.
type NewSession struct {
	CodeID       string // consumed in the same transaction; "" when no code is involved
	UserID       string
	TenantID     string
	MarkVerified bool
	AMR          string
	// RefreshRotation is the tenant's setting, which holds for the session's whole life: false gives
	// it one refresh token, kept (so a tenant that starts rotating never turns a client's kept token
	// into a "reused" one).
	RefreshRotation bool
	IP              string
	UserAgent       string
	IdleTTL         time.Duration
	MaxAge          time.Duration
	RefreshHash     []byte
	// PasswordHash, when set, becomes the user's password in the same transaction: the password an
	// invitee chooses when accepting an invitation code.
	PasswordHash string
	Event        Event
}

// Rotated is what a successful rotation hands back for the new access token.
type Rotated struct {
	SessionID string
	UserID    string
	TenantID  string
	Email     string
	Role      string
	AMR       string
	ExpiresAt time.Time // the session's absolute end
	// Kept is set when the session does not rotate: the presented token stays the session's token.
	Kept bool
	// SessionStart is when the session was opened: the auth_time of its access tokens.
	SessionStart time.Time
}

// Throttle counts failed password checks per login subject and client IP.
type Throttle interface {
	// LockedUntil returns how long the subject must wait before another password check from ip.
	LockedUntil(ctx context.Context, subject, ip string) (time.Duration, error)
	// RecordFailure counts a failure, applies the waits lock returns for the new counts (per-IP wait,
	// subject-wide wait; zero means none) and records ev, all in one transaction.
	RecordFailure(ctx context.Context, subject, ip string, lock func(FailureCounts) (time.Duration, time.Duration), ev Event) (FailureCounts, error)
	// ResetFailures forgets a subject's failures after a success.
	ResetFailures(ctx context.Context, subject string) error
}

// FailureCounts are the consecutive failures of a login subject from one IP and from all IPs.
type FailureCounts struct {
	PerIP int
	Total int
}

// Factors stores TOTP second factors and their recovery codes. Each method that accepts a code is one
// conditional write, so a code is good once across every instance.
type Factors interface {
	// SetPendingTOTP stores a sealed secret awaiting its first code, replacing a pending one, with its
	// event; ErrConflict when the user's factor is already enabled.
	SetPendingTOTP(ctx context.Context, userID string, sealed []byte, ev Event) error
	// TOTPFactor returns the user's factor, pending or enabled; ErrNotFound when there is none.
	TOTPFactor(ctx context.Context, userID string) (TOTPFactor, error)
	// EnableTOTP enables the pending factor if its secret is still Sealed and Step is above its last
	// accepted step, records Step, replaces the recovery codes and writes the event, atomically;
	// ErrNotFound otherwise.
	EnableTOTP(ctx context.Context, p EnableTOTP) error
	// AcceptTOTPStep records step as the newest accepted if the factor is enabled and step is above the
	// last accepted one; ErrNotFound otherwise (a replay, an older code, or no enabled factor).
	AcceptTOTPStep(ctx context.Context, userID string, step int64) error
	// UseRecoveryCode spends the unused recovery code of an enabled factor whose hash is one of hashes
	// (one per version of the hashing key); ErrNotFound when there is none.
	UseRecoveryCode(ctx context.Context, userID string, hashes []string) error
	// ResealTOTP replaces the sealed secret if it is still old (the same secret sealed under a newer
	// key version); ErrNotFound otherwise.
	ResealTOTP(ctx context.Context, userID string, old, sealed []byte) error
	// DisableTOTP removes the enabled factor and its recovery codes, with its event; ErrNotFound when
	// the user has no enabled factor.
	DisableTOTP(ctx context.Context, userID string, ev Event) error
}

// EnableTOTP turns a pending factor on with the step of its first code.
type EnableTOTP struct {
	UserID         string
	Sealed         []byte // the pending secret the code was checked against
	Step           int64
	RecoveryHashes []string
	Event          Event
}

// EventLog records security events that change no other row (a failed login, a throttle), and reads
// the log back.
type EventLog interface {
	RecordEvent(ctx context.Context, ev Event) error
	// ListEvents returns the events q selects, newest (highest id) first, at most q.Limit.
	ListEvents(ctx context.Context, q EventQuery) ([]LoggedEvent, error)
}

// EventQuery selects events: of a tenant, of a user, of a kind (each "" for any), created at or after
// Since and before Until (zero for no bound), with ids below BeforeID (0 for no bound).
type EventQuery struct {
	TenantID string
	UserID   string
	Kind     string
	Since    time.Time
	Until    time.Time
	BeforeID int64
	Limit    int
}

// AdminKeys stores the keys of the admin API, as hashes.
type AdminKeys interface {
	// CreateAdminKey stores a key with the SHA-256 of its secret and records ev, in one transaction;
	// ErrNotFound when its tenant does not exist.
	CreateAdminKey(ctx context.Context, k *AdminKey, hash []byte, ev Event) error
	// AdminKeyByHash finds a key, revoked or not, by the hash of its secret; ErrNotFound when none.
	AdminKeyByHash(ctx context.Context, hash []byte) (AdminKey, error)
	// ListAdminKeys returns every key, revoked ones included, oldest first.
	ListAdminKeys(ctx context.Context) ([]AdminKey, error)
	// RevokeAdminKey revokes a live key and records ev; ErrNotFound when unknown or already revoked.
	RevokeAdminKey(ctx context.Context, id string, ev Event) error
	// TouchAdminKey records a use of the key at most once per interval: it writes only when the last
	// recorded use is older.
	TouchAdminKey(ctx context.Context, id string, interval time.Duration) error
}

// Webhooks is the outbox of webhook deliveries. Each event the log records starts pending fan-out;
// the fan-out queues its deliveries once, and a claim leases due deliveries to one worker at a time,
// across every instance.
type Webhooks interface {
	// FanOutEvents takes up to limit events not yet fanned out, oldest first, and in one transaction
	// stores the deliveries route makes of each (at most one per event and endpoint) and marks them
	// fanned out. Concurrent callers never take the same event. It returns how many events it took.
	FanOutEvents(ctx context.Context, limit int, route func(LoggedEvent) []WebhookDelivery) (int, error)
	// ClaimWebhooks leases up to limit due pending deliveries to one new claim for lease, counting an
	// attempt on each; a lease that runs out (the worker died) makes the delivery due again.
	ClaimWebhooks(ctx context.Context, lease time.Duration, limit int) ([]WebhookDelivery, error)
	// FinishWebhookAttempt records an attempt's outcome if its claim still holds the delivery;
	// ErrNotFound otherwise.
	FinishWebhookAttempt(ctx context.Context, a WebhookAttempt) error
	// ListWebhookDeliveries returns the failed or dead deliveries q selects, newest first.
	ListWebhookDeliveries(ctx context.Context, q WebhookQuery) ([]WebhookDelivery, error)
	// RetryWebhookDelivery makes a dead delivery (of tenantID; "" any) pending and due now with no
	// attempts counted, and records ev (of the delivery's tenant when ev names none), atomically;
	// ErrNotFound when there is no such dead delivery.
	RetryWebhookDelivery(ctx context.Context, id, tenantID string, ev Event) (WebhookDelivery, error)
	// WebhookStats counts pending and dead deliveries and finds the oldest pending.
	WebhookStats(ctx context.Context) (WebhookStats, error)
}

// Store is every storage port the service uses.
type Store interface {
	Users
	TenantStore
	Codes
	Sessions
	Throttle
	Factors
	EventLog
	AdminKeys
	Webhooks
}

// KeyStore keeps generated signing keys and server secrets, so every instance and restart agree.
type KeyStore interface {
	// SigningKeys lists keys that are active or were retired after since, oldest first.
	SigningKeys(ctx context.Context, since time.Time) ([]StoredKey, error)
	// AddSigningKey stores a key; retireOthers retires every active key of the same algorithm in the
	// same transaction.
	AddSigningKey(ctx context.Context, k StoredKey, retireOthers bool) error
	// Secrets returns every version of a named secret, newest first, creating version 1 from gen when
	// none exists (instances racing at first start all end up with the same one).
	Secrets(ctx context.Context, name string, gen func() ([]byte, error)) ([][]byte, error)
}

// StoredKey is a signing key as stored: PKCS#8 PEM, or raw bytes for HS256.
type StoredKey struct {
	ID         string
	Alg        string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// Signer signs and verifies access tokens.
type Signer interface {
	Issue(c token.Claims) (raw string, expiresAt time.Time, err error)
	Verify(raw string) (token.Claims, error)
}

// Hasher hashes and checks passwords under a bounded number of slots; it answers
// password.ErrOverloaded when no slot frees up in time.
type Hasher interface {
	Hash(ctx context.Context, plain string) (string, error)
	Verify(ctx context.Context, encoded, plain string) (ok, needsRehash bool, err error)
	// VerifyDummy spends the work of a check against no account, so timing does not reveal one.
	VerifyDummy(ctx context.Context, plain string) error
}
