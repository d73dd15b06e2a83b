package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/token"
)

// Refresh rotates a refresh token: the old one is spent and a new pair returned. A replay of the same
// token within the grace window gets the same successor (parallel tabs, a retry after a lost
// response); a replay after it, or after the successor was used, is theft: the session ends.
func (s *Service) Refresh(ctx context.Context, refresh string, meta Meta) (TokenPair, error) {
	if !token.LooksLikeRefreshToken(refresh) {
		return TokenPair{}, errInvalidRefresh()
	}
	oldHash := token.HashRefreshToken(refresh)
	successor := token.Successor(s.secret.Refresh[0], refresh)
	r, err := s.store.Rotate(ctx, oldHash, token.HashRefreshToken(successor), s.cfg.RefreshIdleTTL)
	if err == nil {
		return s.pair(r.UserID, r.TenantID, r.Email, r.SessionID, successor, r.IdleExpiresAt)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, internal("rotate", err)
	}
	return s.refreshSlowPath(ctx, refresh, oldHash, meta)
}

// refreshSlowPath explains why a token could not be rotated, or serves a replay within the grace.
func (s *Service) refreshSlowPath(ctx context.Context, refresh string, oldHash []byte, meta Meta) (TokenPair, error) {
	st, err := s.store.InspectRefresh(ctx, oldHash)
	if errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, errInvalidRefresh()
	}
	if err != nil {
		return TokenPair{}, internal("inspect refresh token", err)
	}
	now := s.Now()
	switch {
	case st.UserStatus != store.StatusActive:
		return TokenPair{}, newError(CodeAccountDisabled, "This account is disabled.")
	case st.RevokedAt != nil:
		return TokenPair{}, newError(CodeSessionRevoked, "The session has ended; log in again.")
	case !now.Before(st.ExpiresAt),
		st.UsedAt == nil && !now.Before(st.TokenCreatedAt.Add(s.cfg.RefreshIdleTTL)),
		st.UsedAt != nil && !now.Before(st.IdleExpiresAt):
		// Idle: an unspent token is judged by its own age (exact); a spent one by its session's idle
		// end, so a stale stolen token replayed on a live session still trips reuse detection.
		return TokenPair{}, newError(CodeSessionExpired, "The session has expired; log in again.")
	case st.UsedAt == nil:
		// Live, unused, yet not rotated: only a concurrent state change explains it. Let the client retry.
		return TokenPair{}, errInvalidRefresh()
	}
	if succ, ok := s.graceSuccessor(refresh, st, now); ok {
		return s.pair(st.UserID, st.TenantID, st.Email, st.SessionID, succ, minTime(st.UsedAt.Add(s.cfg.RefreshIdleTTL), st.ExpiresAt))
	}
	ev := store.Event{UserID: st.UserID, Kind: "refresh_token_reused", IP: meta.IP, UserAgent: meta.UserAgent,
		Detail: "a spent refresh token was presented again; the session was revoked"}
	if err := s.store.RevokeSession(ctx, st.UserID, st.SessionID, "refresh_token_reused", ev); err != nil && !errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, internal("revoke reused session", err)
	}
	return TokenPair{}, newError(CodeRefreshReused, "This refresh token was already used; the session has been ended for safety. Log in again.")
}

// graceSuccessor returns the successor of a spent token if the replay is inside the grace window and
// the successor itself is still unspent. The successor is derived again, not stored: any version of
// the refresh secret that reproduces the stored hash will do.
func (s *Service) graceSuccessor(refresh string, st store.RefreshState, now time.Time) (string, bool) {
	if s.cfg.ReuseGrace <= 0 || st.UsedAt == nil || now.Sub(*st.UsedAt) > s.cfg.ReuseGrace || !st.SuccessorFound || st.SuccessorUsed != nil {
		return "", false
	}
	for _, key := range s.secret.Refresh {
		succ := token.Successor(key, refresh)
		if subtle.ConstantTimeCompare(token.HashRefreshToken(succ), st.SuccessorHash) == 1 {
			return succ, true
		}
	}
	return "", false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Principal is an authenticated caller: the verified claims of its access token.
type Principal struct {
	Claims token.Claims
}

// Authenticate verifies an access token. With live set, the token's session must also still be live
// in the database; without it verification is stateless and a token stays good until exp even if its
// session was revoked (keep access tokens short-lived for that reason).
func (s *Service) Authenticate(ctx context.Context, raw string, live bool) (Principal, error) {
	c, err := s.tokens.Verify(raw)
	if errors.Is(err, token.ErrUnknownKey) && s.keys.reloadForUnknownKid(ctx) {
		c, err = s.tokens.Verify(raw)
	}
	switch {
	case errors.Is(err, token.ErrExpired):
		return Principal{}, &Error{Code: CodeTokenExpired, Detail: "The access token has expired.", Err: err}
	case err != nil:
		return Principal{}, &Error{Code: CodeInvalidToken, Detail: "The access token is invalid.", Err: err}
	}
	if live {
		if _, err := s.store.LiveSession(ctx, c.SessionID); errors.Is(err, store.ErrNotFound) {
			return Principal{}, newError(CodeSessionRevoked, "The session has ended; log in again.")
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
func (s *Service) Me(ctx context.Context, p Principal) (store.User, error) {
	u, err := s.store.UserByID(ctx, p.Claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return u, newError(CodeInvalidToken, "The access token's user no longer exists.")
	}
	if err != nil {
		return u, internal("load user", err)
	}
	if u.Status != store.StatusActive {
		return u, newError(CodeAccountDisabled, "This account is disabled.")
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

// Logout revokes a session (or all of the user's). Logging out an already ended session succeeds.
func (s *Service) Logout(ctx context.Context, in LogoutInput) error {
	var userID, sessionID string
	switch {
	case in.RefreshToken != "":
		if !token.LooksLikeRefreshToken(in.RefreshToken) {
			return errInvalidRefresh()
		}
		sess, err := s.store.SessionForRefresh(ctx, token.HashRefreshToken(in.RefreshToken))
		if errors.Is(err, store.ErrNotFound) {
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
	ev := store.Event{UserID: userID, Kind: "logout", IP: in.Meta.IP, UserAgent: in.Meta.UserAgent}
	if in.All {
		ev.Kind, ev.SessionID = "logout_all", sessionID
		if err := s.store.RevokeUserSessions(ctx, userID, "", "logout", ev); err != nil {
			return internal("revoke sessions", err)
		}
		return nil
	}
	err := s.store.RevokeSession(ctx, userID, sessionID, "logout", ev)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal("revoke session", err)
	}
	return nil
}

// Sessions lists the caller's live sessions.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]store.Session, error) {
	out, err := s.store.ListSessions(ctx, p.Claims.Subject)
	if err != nil {
		return nil, internal("list sessions", err)
	}
	return out, nil
}

// RevokeSession ends one of the caller's own sessions; any other id is not found.
func (s *Service) RevokeSession(ctx context.Context, p Principal, sessionID string, meta Meta) error {
	ev := store.Event{UserID: p.Claims.Subject, Kind: "session_revoked", IP: meta.IP, UserAgent: meta.UserAgent}
	err := s.store.RevokeSession(ctx, p.Claims.Subject, sessionID, "revoked_by_user", ev)
	if errors.Is(err, store.ErrNotFound) {
		return newError(CodeNotFound, "No such session.")
	}
	if err != nil {
		return internal("revoke session", err)
	}
	return nil
}
