package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultTenantID is the tenant every user belongs to unless told otherwise. Its settings come from
// the configuration (default_tenant), not from its row.
const DefaultTenantID = "default"

// DefaultRole is the role of a user no admin has given another.
const DefaultRole = "user"

// User statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// User is an account as the service hands it out: it never carries the password hash.
type User struct {
	ID              string
	TenantID        string
	Email           string // trimmed and lower-cased
	EmailVerifiedAt *time.Time
	Status          string
	// Role and Metadata are set only by an admin. Role is a claim of the access token; Metadata is
	// a JSON object of at most MaxMetadataBytes.
	Role     string
	Metadata json.RawMessage
	// TOTPEnabled says the user logs in with an authenticator app instead of an emailed code.
	TOTPEnabled bool
	// Locale is the language tag the user registered with: their emails are in it when there are
	// templates in it, else in their tenant's locale, else in English. "" is the tenant's.
	Locale    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Active reports whether the account may log in and refresh.
func (u User) Active() bool { return u.Status == StatusActive }

// Credential is a user with the password hash, as the password check needs it. It is kept apart from
// User so the hash cannot travel past the check by accident.
type Credential struct {
	User         User
	PasswordHash string
}

// Code purposes. A code is good for exactly one.
const (
	PurposeSignup = "signup"
	PurposeLogin  = "login"
	PurposeReset  = "reset"
	// PurposeNotice marks mail that carries no code (e.g. "password changed"); it counts against no limit.
	PurposeNotice = "notice"
	// PurposeAlreadyRegistered is the notice a registration of a taken address sends instead of a code.
	// It has a budget of its own: anyone can trigger it with an address alone, so it must neither spend
	// the owner's code emails nor be unbounded.
	PurposeAlreadyRegistered = "already_registered"
	// PurposeEmailChange confirms a new address: its code goes to that address. A request for an
	// address taken in the tenant spends the same budget, so it cannot be told from one for a free one.
	PurposeEmailChange = "email_change"
	// PurposeDeleteAccount confirms a user's deletion of their own account.
	PurposeDeleteAccount = "delete_account"
)

// EmailCode is an emailed one-time code; only its HMAC is kept.
type EmailCode struct {
	ID          string
	UserID      string
	Purpose     string
	Hash        []byte
	Attempts    int
	MaxAttempts int
	ExpiresAt   time.Time
	// PendingEmail is the address an email_change code moves the account to; "" on one that must
	// never move it (the code of a request for a taken address).
	PendingEmail string
}

// UserChanges are what an admin may change on a user; nil leaves a field as it is.
type UserChanges struct {
	Role     *string
	Metadata json.RawMessage // a compact JSON object
	// Status disabled also ends every live session of the user, in the same transaction.
	Status *string
	// EmailVerified true marks the address verified (keeping an earlier time), false unverified.
	EmailVerified *bool
}

// Session is one login: the sid claim of its access tokens and the owner of a refresh-token chain.
type Session struct {
	ID         string
	UserID     string
	TenantID   string
	AMR        string
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// IdleExpiresAt is kept to within sessionTouchEvery of the exact idle end (see SessionEnd); the
	// exact one is judged on the newest refresh token when it matters.
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	RevokedAt     *time.Time
}

// Ends is when the session stops being usable if nothing happens before: the earlier of its idle end
// and its absolute end.
func (s Session) Ends() time.Time { return earlier(s.IdleExpiresAt, s.ExpiresAt) }

// TOTPFactor is a user's authenticator-app factor as stored: pending from setup until its first code
// enables it.
type TOTPFactor struct {
	UserID string
	// Secret is the base32 secret sealed by the service (seal.PurposeTOTP, the user id as associated
	// data); the store never sees it in plain.
	Secret []byte
	// LastStep is the newest time step accepted for the user; no step at or below it is accepted again.
	LastStep  int64
	EnabledAt *time.Time
}

// Event is a row of the security event log, written in the transaction of the change it records.
type Event struct {
	UserID string
	// TenantID is the tenant the event belongs to; the store takes the user's when it is empty.
	TenantID  string
	SessionID string
	Kind      string
	IP        string
	UserAgent string
	Detail    string
	// Actor is who made the change by hand (an admin key, the command line); zero for the user's own
	// actions and the service's.
	Actor Actor
}

// Actor types.
const (
	ActorAdminKey = "admin_key"
	ActorCLI      = "cli"
	// ActorUser is the user acting on their own account where an operator could have done the same
	// (deleting it); its ID is the user's id.
	ActorUser = "user"
)

// Actor names who made a change by hand: an admin key by its id and name (never its secret), or a
// command line run by the command.
type Actor struct {
	Type string
	ID   string
	Name string
}

// LoggedEvent is an event as the log keeps it.
type LoggedEvent struct {
	ID int64
	Event
	CreatedAt time.Time
}

// Email is a message queued in the outbox in the transaction of the change that caused it.
type Email struct {
	To string
	// From is the tenant's sender ("Name <address>"); "" sends from the configured mail.from.
	From     string
	Template string
	// Data renders the template data; replaced tells whether the code in it killed a live one.
	Data func(replaced bool) (string, error)
	// ExpiresAt is when retrying stops being useful (the code's expiry for code mail).
	ExpiresAt time.Time
}

// Errors the ports return; the service turns them into catalogue errors.
var (
	// ErrNotFound means the row asked for does not exist, or is not in the state the change needs.
	ErrNotFound = errors.New("auth: not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("auth: conflict")
	// ErrCodeDead means the code can take no more tries: used, replaced, expired or out of attempts.
	ErrCodeDead = errors.New("auth: code is used, expired or out of attempts")
	// ErrUnavailable wraps a storage failure that says nothing about the request: the database did not
	// answer in time, or could not be reached. The service answers it with CodeUnavailable.
	ErrUnavailable = errors.New("auth: storage unavailable")
)

// LimitError says a code email was refused by the resend cooldown or the hourly cap of its purpose.
type LimitError struct {
	Cooldown   bool // true: the resend cooldown; false: the hourly cap
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.Cooldown {
		return fmt.Sprintf("auth: code sent recently, retry after %s", e.RetryAfter)
	}
	return fmt.Sprintf("auth: hourly code email cap reached, retry after %s", e.RetryAfter)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// UserData is everything the store holds about one user, for their data export. It carries no secret:
// no password, code or token hash, no TOTP secret, no email content.
type UserData struct {
	User User
	// Sessions are every session still kept, ended ones too, newest first.
	Sessions []Session
	// Codes are the user's unused codes, which may have expired.
	Codes []CodeInfo
	// Mail is what the outbox keeps of the user's email, oldest first.
	Mail []MailInfo
	// Events are the security events about the user, newest first.
	Events []LoggedEvent
}

// CodeInfo describes an emailed code without its value.
type CodeInfo struct {
	Purpose     string
	Attempts    int
	MaxAttempts int
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// MailInfo describes a queued email without its content (which holds codes until it is sent).
type MailInfo struct {
	Template  string
	Purpose   string
	To        string
	CreatedAt time.Time
	SentAt    *time.Time
	DeadAt    *time.Time
}

// EmailChange moves a user to the address of an email_change code, consuming the code, in one
// transaction with the notice to the old address and the event.
type EmailChange struct {
	CodeID   string
	UserID   string
	NewEmail string
	Mail     Email
	Event    Event
}
