package auth

import (
	"context"
	"errors"
)

// NewAccount is an account an operator creates: the operator vouches for the address, so it counts
// as verified and no code is sent.
type NewAccount struct {
	Email    string
	Password string
	TenantID string
	Actor    string // who did it, for the event log
}

// CreateAccount creates an active, verified account under the same email and password rules as
// registration.
func (s *Service) CreateAccount(ctx context.Context, in NewAccount) (User, error) {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	s.checkNewPassword(&v, "password", in.Password)
	tenant, err := s.requestTenant(ctx, &v, in.TenantID)
	if err != nil {
		return User{}, err
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, hashErr("hash password", err)
	}
	verified := s.Now().UTC()
	u := User{TenantID: tenant.ID, Email: email, EmailVerifiedAt: &verified}
	err = s.store.CreateUser(ctx, &u, hash)
	if errors.Is(err, ErrConflict) {
		return User{}, newError(CodeEmailTaken, "An account with this email already exists in this tenant.")
	}
	if err != nil {
		return User{}, internal("create user", err)
	}
	ev := Meta{}.event(u.ID, "user_created", in.Actor)
	if err := s.store.RecordEvent(ctx, ev); err != nil {
		return u, internal("record event", err)
	}
	return u, nil
}

// DisableAccount disables the account of an email: it can no longer log in or refresh, and every
// session ends at once.
func (s *Service) DisableAccount(ctx context.Context, tenantID, email, actor string) (User, error) {
	var v Validation
	email = normalizeEmail(&v, "email", email)
	tenant, err := s.requestTenant(ctx, &v, tenantID)
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
	ev := Meta{}.event(u.ID, "user_disabled", actor)
	if err := s.store.SetUserStatus(ctx, u.ID, StatusDisabled, ev); err != nil {
		return User{}, internal("disable user", err)
	}
	u.Status = StatusDisabled
	return *u, nil
}
