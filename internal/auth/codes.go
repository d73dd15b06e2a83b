package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/latch-auth/latch/internal/mail"
)

// newCode draws six uniform digits: rejection sampling avoids the modulo bias of taking a random
// uint32 mod 10^6.
func newCode(r io.Reader) (string, error) {
	const space = 1_000_000
	const limit = (1 << 32) / space * space
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if n := binary.BigEndian.Uint32(b[:]); n < limit {
			return fmt.Sprintf("%06d", n%space), nil
		}
	}
}

// codeHash binds a code to its user and purpose, so a code cannot be replayed for another account
// or another step, and a database leak does not reveal live codes.
func codeHash(key []byte, userID, purpose, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

func templateFor(purpose string) string { return purpose + "_code" }

// mailData serialises template data for the outbox; the code is scrubbed once the mail is sent.
func mailData(d mail.Data) func(replaced bool) (string, error) {
	return func(replaced bool) (string, error) {
		d.Replaced = replaced
		b, err := json.Marshal(d)
		return string(b), err
	}
}

// brandedEmail is an email of the tenant to its user: the tenant's sender and product name (without
// one, mail.app_name), in the user's language, else the tenant's.
func brandedEmail(t Tenant, u User, template string, expires time.Time, d mail.Data) Email {
	d.AppName, d.Locale, d.FallbackLocale, d.Tenant = t.Settings.AppName, u.Locale, t.Settings.Locale, t.ID
	return Email{To: u.Email, From: t.Settings.MailFrom, Template: template, ExpiresAt: expires, Data: mailData(d)}
}

// sendCode creates a code for the user and purpose and queues its email, with ev (when its Kind is
// set) in the same transaction. pendingHash, for a signup code, is the password that takes effect
// when the code is validated.
func (s *Service) sendCode(ctx context.Context, u User, tenant Tenant, purpose, pendingHash string, ev Event) error {
	return s.sendCodeMail(ctx, u, tenant, purpose, pendingHash, templateFor(purpose), s.cfg.CodeTTL, ev)
}

// sendCodeMail is sendCode with the email template and the code's lifetime chosen by the caller (an
// invitation is a sign-up code in an email of its own, valid for longer).
func (s *Service) sendCodeMail(ctx context.Context, u User, tenant Tenant, purpose, pendingHash, template string, ttl time.Duration, ev Event) error {
	code, err := newCode(s.Random)
	if err != nil {
		return internal("draw code", err)
	}
	now := s.Now()
	_, err = s.store.IssueCode(ctx, IssueCode{
		UserID: u.ID, Purpose: purpose, CodeHash: codeHash(s.secret.Code[0], u.ID, purpose, code), PendingPasswordHash: pendingHash,
		TTL: ttl, MaxAttempts: s.cfg.CodeMaxAttempts, Cooldown: s.cfg.ResendCooldown, MaxPerHour: s.cfg.CodesPerHour,
		Mail: brandedEmail(tenant, u, template, now.Add(ttl),
			mail.Data{Email: u.Email, Code: code, ValidMinutes: int(ttl / time.Minute), ValidHours: int(ttl / time.Hour), Time: now}),
		Event: ev,
	})
	return s.afterIssue(err)
}

// sendNotice queues the code-less "already registered" email under its own cooldown and hourly cap.
func (s *Service) sendNotice(ctx context.Context, u User, tenant Tenant, meta Meta) error {
	now := s.Now()
	_, err := s.store.IssueCode(ctx, IssueCode{
		UserID: u.ID, Purpose: PurposeAlreadyRegistered, Cooldown: s.cfg.ResendCooldown, MaxPerHour: s.cfg.NoticesPerHour,
		Mail: brandedEmail(tenant, u, mail.AlreadyRegistered, now.Add(time.Hour), noticeData(u.Email, now, meta)),
	})
	return s.afterIssue(err)
}

func (s *Service) afterIssue(err error) error {
	var lim *LimitError
	switch {
	case errors.As(err, &lim) && lim.Cooldown:
		return &Error{Code: CodeRecentlySent, Detail: "A code was sent moments ago; wait before asking for another.", RetryAfter: roundUp(lim.RetryAfter)}
	case errors.As(err, &lim):
		return &Error{Code: CodeTooManyCodes, Detail: "Too many codes of this kind were sent to this account in the last hour.", RetryAfter: roundUp(lim.RetryAfter)}
	case err != nil:
		return internal("issue code", err)
	}
	s.mailQueued()
	return nil
}

// checkCode verifies a presented code for the user and purpose. The try is spent by an atomic UPDATE
// before the comparison, so concurrent guesses cannot exceed the limit. On success it returns the code
// id, which the caller consumes in the transaction that acts on it.
func (s *Service) checkCode(ctx context.Context, u *User, purpose, code string) (string, error) {
	live, err := s.checkLiveCode(ctx, u, purpose, code)
	return live.ID, err
}

// checkLiveCode is checkCode answering the whole code, for the purposes that carry more than the
// proof (an email change, its address).
func (s *Service) checkLiveCode(ctx context.Context, u *User, purpose, code string) (EmailCode, error) {
	if u == nil {
		return EmailCode{}, invalidCode(nil)
	}
	live, err := s.store.LiveCode(ctx, u.ID, purpose)
	if errors.Is(err, ErrNotFound) {
		return EmailCode{}, invalidCode(nil)
	}
	if err != nil {
		return EmailCode{}, internal("load code", err)
	}
	// Tries left are told only for login codes, which exist only after the account's password was
	// given. A stranger can make a signup or reset code exist with an address alone; telling its tries
	// would tell an address with an account from one without.
	tell := func(left int) *int {
		if purpose != PurposeLogin {
			return nil
		}
		return &left
	}
	attempts, err := s.store.CountCodeAttempt(ctx, live.ID)
	if errors.Is(err, ErrCodeDead) {
		if !s.Now().Before(live.ExpiresAt) {
			return EmailCode{}, invalidCode(nil)
		}
		return EmailCode{}, invalidCode(tell(0))
	}
	if err != nil {
		return EmailCode{}, internal("count code attempt", err)
	}
	for _, key := range s.secret.Code {
		if hmac.Equal(codeHash(key, u.ID, purpose, code), live.Hash) {
			return live, nil
		}
	}
	return EmailCode{}, invalidCode(tell(live.MaxAttempts - attempts))
}

func invalidCode(remaining *int) error {
	e := &Error{Code: CodeInvalidCode, Detail: "The code is wrong or has expired.", AttemptsRemaining: remaining}
	if remaining != nil && *remaining == 0 {
		e.Detail = "The code is wrong and no tries are left; start over to get a new code."
	}
	return e
}

// isLimited reports whether err is a refusal by a code email's cooldown or hourly cap.
func isLimited(err error) bool {
	c := ErrorCode(err)
	return c == CodeRecentlySent || c == CodeTooManyCodes
}
