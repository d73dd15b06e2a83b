package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/latch-auth/latch/internal/mail"
)

// The self-service account operations: a user changes their address, deletes their account, or
// exports what is held about them. Each acts on the account of a live session's access token.

// EmailChangeInput asks to move the caller's account to NewEmail.
type EmailChangeInput struct {
	CurrentPassword string
	NewEmail        string
	Meta            Meta
}

// RequestEmailChange checks the caller's password and emails a code to the new address, which
// ConfirmEmailChange takes; it answers how long the code lives. The password is asked because an
// access token alone (stolen from a page, valid for minutes) must not be able to move the account to
// another address: whoever holds the address can reset the password, so that would be a takeover.
//
// An address that already has an account in the tenant gets the same answer, from the same budget
// of code emails, and a notice instead of a code; the code stored for it was never sent and moves the
// account nowhere, so the request cannot be told from another and its confirmation always fails.
func (s *Service) RequestEmailChange(ctx context.Context, p Principal, in EmailChangeInput) (int64, error) {
	var v Validation
	s.checkPresentedPassword(&v, "currentPassword", in.CurrentPassword)
	newEmail := normalizeEmail(&v, "newEmail", in.NewEmail)
	if err := v.Err(); err != nil {
		return 0, err
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return 0, err
	}
	if strings.EqualFold(newEmail, me.Email) {
		v.Add("newEmail", "is already the account's address")
		return 0, v.Err()
	}
	u, err := s.proveOwner(ctx, me, in.CurrentPassword, in.Meta)
	if err != nil {
		return 0, err
	}
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		return 0, err
	}
	other, err := s.lookup(ctx, tenant.ID, newEmail)
	if err != nil {
		return 0, err
	}
	code, err := newCode(s.Random)
	if err != nil {
		return 0, internal("draw code", err)
	}
	now, ttl := s.Now(), s.cfg.CodeTTL
	data := mail.Data{Email: newEmail, Code: code, ValidMinutes: int(ttl / time.Minute), ValidHours: int(ttl / time.Hour), Time: now}
	// The code goes out in the mover's language; a notice to a taken address in its owner's.
	to, template, pending := User{Email: newEmail, Locale: u.Locale}, mail.EmailChangeCode, newEmail
	if other != nil {
		to, template, pending, data.Code = *other, mail.EmailTaken, "", ""
	}
	_, err = s.store.IssueCode(ctx, IssueCode{
		UserID: u.ID, Purpose: PurposeEmailChange, CodeHash: codeHash(s.secret.Code[0], u.ID, PurposeEmailChange, code),
		PendingEmail: pending, TTL: ttl, MaxAttempts: s.cfg.CodeMaxAttempts, Cooldown: s.cfg.ResendCooldown,
		MaxPerHour: s.cfg.CodesPerHour, Mail: brandedEmail(tenant, to, template, now.Add(ttl), data),
		Event: in.Meta.event(u.ID, "email_change_requested", ""),
	})
	if err := s.afterIssue(err); err != nil {
		return 0, err
	}
	return int64(ttl / time.Second), nil
}

// ConfirmEmailChange moves the caller's account to the address the code was sent to, marked verified
// (the code proved it), and tells the old address. Sessions are kept; access tokens name the new
// address from the next refresh.
func (s *Service) ConfirmEmailChange(ctx context.Context, p Principal, code string, meta Meta) (User, error) {
	var v Validation
	code = checkCode(&v, "emailToken", code)
	if err := v.Err(); err != nil {
		return User{}, err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return User{}, err
	}
	live, err := s.checkLiveCode(ctx, &u, PurposeEmailChange, code)
	if err != nil {
		return User{}, err
	}
	if live.PendingEmail == "" {
		// The code of a request for a taken address: nobody was sent it, and it moves nothing.
		return User{}, invalidCode(nil)
	}
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		return User{}, err
	}
	now := s.Now()
	ev := meta.event(u.ID, "email_changed", "")
	ev.SessionID = p.Claims.SessionID
	notice := noticeData(u.Email, now, meta)
	notice.NewEmail = live.PendingEmail
	err = s.store.ChangeEmail(ctx, EmailChange{CodeID: live.ID, UserID: u.ID, NewEmail: live.PendingEmail,
		Mail: brandedEmail(tenant, u, mail.EmailChanged, now.Add(24*time.Hour), notice), Event: ev})
	switch {
	case errors.Is(err, ErrCodeDead):
		return User{}, invalidCode(nil)
	case errors.Is(err, ErrConflict):
		// Taken since the code was sent; whoever holds the code reads that address's mail.
		return User{}, newError(CodeEmailTaken, "An account with this email now exists in this tenant.")
	case err != nil:
		return User{}, internal("change email", err)
	}
	s.mailQueued()
	return s.Me(ctx, p)
}

// RequestDeletion checks the caller's password and emails the code DeleteAccount takes; it answers
// how long the code lives. Both are asked so that neither a stolen access token nor a read mailbox
// alone can delete an account.
func (s *Service) RequestDeletion(ctx context.Context, p Principal, password string, meta Meta) (int64, error) {
	var v Validation
	s.checkPresentedPassword(&v, "password", password)
	if err := v.Err(); err != nil {
		return 0, err
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return 0, err
	}
	u, err := s.proveOwner(ctx, me, password, meta)
	if err != nil {
		return 0, err
	}
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		return 0, err
	}
	if err := s.sendCode(ctx, *u, tenant, PurposeDeleteAccount, "", meta.event(u.ID, "deletion_requested", "")); err != nil {
		return 0, err
	}
	return int64(s.cfg.CodeTTL / time.Second), nil
}

// DeleteAccount erases the caller's account with a code from RequestDeletion, exactly as an operator's
// deletion does; the event names the user as its actor. Every session and refresh token goes with it,
// and access tokens are refused from then on (their user no longer exists).
func (s *Service) DeleteAccount(ctx context.Context, p Principal, code string, meta Meta) error {
	var v Validation
	code = checkCode(&v, "emailToken", code)
	if err := v.Err(); err != nil {
		return err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if _, err := s.checkCode(ctx, &u, PurposeDeleteAccount, code); err != nil {
		return err
	}
	// The address stays out of the event: the erasure scrubs it from the log before the event is written.
	ev := meta.event(u.ID, "user_deleted", "")
	ev.TenantID, ev.Actor = u.TenantID, Actor{Type: ActorUser, ID: u.ID}
	return s.eraseUser(ctx, u, ev)
}

// AccountExport is what a user's data export holds: what the store keeps about them, and the language
// their email is written in.
type AccountExport struct {
	UserData
	// Locale is the language of the user's email: their own locale, else their tenant's ("" when
	// neither names one).
	Locale string
}

// Export is everything held about the caller (see UserData). Of the outbox it keeps the email sent
// to the account's current address only: an email change's notice went to someone else's address,
// which the export must not reveal.
func (s *Service) Export(ctx context.Context, p Principal) (AccountExport, error) {
	u, err := s.Me(ctx, p)
	if err != nil {
		return AccountExport{}, err
	}
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		return AccountExport{}, err
	}
	d, err := s.store.UserData(ctx, u.ID)
	if errors.Is(err, ErrNotFound) {
		return AccountExport{}, newError(CodeInvalidToken, "The access token's user no longer exists.")
	}
	if err != nil {
		return AccountExport{}, internal("export user", err)
	}
	kept := d.Mail[:0]
	for _, m := range d.Mail {
		if strings.EqualFold(m.To, d.User.Email) {
			kept = append(kept, m)
		}
	}
	d.Mail = kept
	locale := d.User.Locale
	if locale == "" {
		locale = tenant.Settings.Locale
	}
	return AccountExport{UserData: d, Locale: locale}, nil
}

// proveOwner is the password check of an operation on the caller's own account (the throttled login
// check, on the account's address); a success forgets earlier failures.
func (s *Service) proveOwner(ctx context.Context, me User, password string, meta Meta) (*User, error) {
	u, err := s.checkPassword(ctx, me.TenantID, me.Email, password, meta)
	if err != nil {
		return nil, err
	}
	if err := s.passed(ctx, loginSubject(me.TenantID, me.Email)); err != nil {
		return nil, err
	}
	return u, nil
}
