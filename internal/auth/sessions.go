package auth

import (
	"context"
	"errors"

	"github.com/latch-auth/latch/internal/token"
)

// Principal is an authenticated caller: the verified claims of its access token.
type Principal struct {
	Claims token.Claims
}

// Authenticate verifies an access token. With live set, the token's session must also still be live
// in the database; without it verification is stateless and a token stays good until exp even if its
// session was revoked (keep access tokens short-lived for that reason).
func (s *Service) Authenticate(ctx context.Context, raw string, live bool) (Principal, error) {
	c, err := s.signer.Verify(raw)
	switch {
	case errors.Is(err, token.ErrExpired):
		return Principal{}, &Error{Code: CodeTokenExpired, Detail: "The access token has expired.", Err: err}
	case err != nil:
		return Principal{}, &Error{Code: CodeInvalidToken, Detail: "The access token is invalid.", Err: err}
	}
	if live {
		if _, err := s.store.LiveSession(ctx, c.SessionID); errors.Is(err, ErrNotFound) {
			return Principal{}, errSessionRevoked()
		} else if err != nil {
			return Principal{}, internal("check session", err)
		}
	}
	return Principal{Claims: c}, nil
}

// Verify checks an access token for a caller that wants its claims (POST /v2/auth/verify).
func (s *Service) Verify(ctx context.Context, raw string) (token.Claims, error) {
	if raw == "" {
		var v Validation
		v.Add("token", "is required")
		return token.Claims{}, v.Err()
	}
	p, err := s.Authenticate(ctx, raw, false)
	return p.Claims, err
}

// Me is the account behind an access token.
func (s *Service) Me(ctx context.Context, p Principal) (User, error) {
	u, err := s.store.UserByID(ctx, p.Claims.Subject)
	if errors.Is(err, ErrNotFound) {
		return u, newError(CodeInvalidToken, "The access token's user no longer exists.")
	}
	if err != nil {
		return u, internal("load user", err)
	}
	if !u.Active() {
		return u, errDisabled()
	}
	return u, nil
}

// LogoutInput names what to end: the session of a refresh token, or of the caller's access token;
// All ends every session of that user.
type LogoutInput struct {
	RefreshToken string
	Principal    *Principal
	All          bool
	Meta         Meta
}

// Logout revokes a session (or all of the user's). Logging out an already ended session succeeds,
// but ending every session takes a live token: one that would refresh now (or within its grace), or
// the access token of a live session, so a spent token picked up from a log cannot end them all.
func (s *Service) Logout(ctx context.Context, in LogoutInput) error {
	var userID, sessionID string
	switch {
	case in.RefreshToken != "":
		if !token.LooksLikeRefreshToken(in.RefreshToken) {
			return errInvalidRefresh()
		}
		if in.All {
			if err := s.requireLiveRefresh(ctx, in.RefreshToken); err != nil {
				return err
			}
		}
		sess, err := s.store.SessionForRefresh(ctx, token.HashRefreshToken(in.RefreshToken))
		if errors.Is(err, ErrNotFound) {
			return errInvalidRefresh()
		}
		if err != nil {
			return internal("find session", err)
		}
		userID, sessionID = sess.UserID, sess.ID
	case in.Principal != nil:
		userID, sessionID = in.Principal.Claims.Subject, in.Principal.Claims.SessionID
	default:
		var v Validation
		v.Add("refreshToken", "is required (or send an access token in Authorization)")
		return v.Err()
	}
	ev := in.Meta.event(userID, "logout", "")
	if in.All {
		ev.Kind, ev.SessionID = "logout_all", sessionID
		if err := s.store.RevokeUserSessions(ctx, userID, "", "logout", ev); err != nil {
			return internal("revoke sessions", err)
		}
		return nil
	}
	err := s.store.RevokeSession(ctx, userID, sessionID, "logout", ev)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return internal("revoke session", err)
	}
	return nil
}

// requireLiveRefresh answers nil for a refresh token that the rotation rule would accept now.
func (s *Service) requireLiveRefresh(ctx context.Context, refresh string) error {
	st, err := s.store.RefreshState(ctx, token.HashRefreshToken(refresh))
	var state *RefreshState
	switch {
	case err == nil:
		state = &st
	case !errors.Is(err, ErrNotFound):
		return internal("inspect refresh token", err)
	}
	switch v := ClassifyRefresh(state, s.Now(), s.refreshRules()); v {
	case RefreshRotate, RefreshKeep, RefreshGrace:
		return nil
	default:
		return verdictError(v)
	}
}

// Sessions lists the caller's live sessions.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]Session, error) {
	out, err := s.store.ListSessions(ctx, p.Claims.Subject)
	if err != nil {
		return nil, internal("list sessions", err)
	}
	return out, nil
}

// RevokeSession ends one of the caller's own sessions; any other id is not found.
func (s *Service) RevokeSession(ctx context.Context, p Principal, sessionID string, meta Meta) error {
	ev := meta.event(p.Claims.Subject, "session_revoked", "")
	err := s.store.RevokeSession(ctx, p.Claims.Subject, sessionID, "revoked_by_user", ev)
	if errors.Is(err, ErrNotFound) {
		return newError(CodeNotFound, "No such session.")
	}
	if err != nil {
		return internal("revoke session", err)
	}
	return nil
}
