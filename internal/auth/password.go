package auth

import (
	"context"
	"errors"
	"time"

	"github.com/latch-auth/latch/internal/mail"
)

// ForgotPassword emails a reset code when the account exists. Its answer never depends on that: the
// input is checked, then the answer goes out, and the account is looked up and the code issued after
// it (detach), so neither the answer nor its timing tells an address with an account from one
// without. Limits that would refuse the email, and failures, are logged.
func (s *Service) ForgotPassword(ctx context.Context, email, tenantID string, meta Meta) error {
	var v Validation
	email = normalizeEmail(&v, "email", email)
	tenant, err := s.requestTenant(ctx, &v, tenantID)
	if err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	s.detach(ctx, "password reset request", func(ctx context.Context) error {
		u, err := s.lookup(ctx, tenant.ID, email)
		if err != nil || u == nil || !u.Active() {
			return err
		}
		err = s.sendCode(ctx, *u, tenant, PurposeReset, "", meta.event(u.ID, "password_reset_requested", ""))
		if isLimited(err) {
			s.log.InfoContext(ctx, "reset code not sent", "reason", ErrorCode(err))
			return nil
		}
		return err
	})
	return nil
}

// ResetInput is a reset code and the new password.
type ResetInput struct {
	Email, Code, NewPassword, TenantID string
	Meta                               Meta
}

// ResetPassword sets a new password with an emailed reset code and ends every session of the user.
func (s *Service) ResetPassword(ctx context.Context, in ResetInput) error {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	code := checkCode(&v, "emailToken", in.Code)
	s.checkNewPassword(&v, "newPassword", in.NewPassword)
	tenant, err := s.requestTenant(ctx, &v, in.TenantID)
	if err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	u, err := s.lookup(ctx, tenant.ID, email)
	if err != nil {
		return err
	}
	codeID, err := s.checkCode(ctx, u, PurposeReset, code)
	if err != nil {
		return err
	}
	if !u.Active() {
		// A code issued before an operator disabled the account must not reopen it.
		return errDisabled()
	}
	return s.setPassword(ctx, *u, codeID, "", in.NewPassword, "password_reset", in.Meta)
}

// ChangePassword replaces the caller's password after checking the current one, and ends the
// user's other sessions.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string, meta Meta) error {
	var v Validation
	s.checkPresentedPassword(&v, "currentPassword", current)
	s.checkNewPassword(&v, "newPassword", next)
	if err := v.Err(); err != nil {
		return err
	}
	if current == next {
		return &Error{Code: CodePasswordUnchanged, Detail: "The new password must differ from the current one.",
			Fields: []FieldError{{Field: "newPassword", Message: "must differ from currentPassword"}}}
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	u, err := s.checkPassword(ctx, me.TenantID, me.Email, current, meta)
	if err != nil {
		return err
	}
	if err := s.passed(ctx, loginSubject(me.TenantID, me.Email)); err != nil {
		return err
	}
	return s.setPassword(ctx, *u, "", p.Claims.SessionID, next, "password_changed", meta)
}

func (s *Service) setPassword(ctx context.Context, u User, codeID, keepSession, plain, event string, meta Meta) error {
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, plain)
	if err != nil {
		return hashErr("hash password", err)
	}
	now := s.Now()
	err = s.store.UpdatePassword(ctx, PasswordUpdate{
		CodeID: codeID, UserID: u.ID, Hash: hash, KeepSessionID: keepSession, Reason: event,
		Mail:  brandedEmail(tenant, u, mail.PasswordChanged, now.Add(24*time.Hour), noticeData(u.Email, now, meta)),
		Event: meta.event(u.ID, event, ""),
	})
	if errors.Is(err, ErrCodeDead) {
		return invalidCode(nil)
	}
	if err != nil {
		return internal("update password", err)
	}
	s.mailQueued()
	return nil
}
