package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/latch-auth/latch/internal/token"
)

// RefreshState is what is known of a presented refresh token: the token, its session, its user and
// its successor. It is everything ClassifyRefresh reads.
type RefreshState struct {
	TokenCreatedAt time.Time
	// TokenLastUsedAt is the token's last successful use in a session without rotation (nil before
	// any): the idle window of such a session runs from it.
	TokenLastUsedAt *time.Time
	UsedAt          *time.Time
	SessionID       string
	UserID          string
	TenantID        string
	Email           string
	Role            string
	AMR             string
	UserStatus      string
	RevokedAt       *time.Time
	ExpiresAt       time.Time // the session's absolute end
	SessionStart    time.Time // when the session was opened
	// Kept marks the one refresh token of a session without rotation, kept for the session's life.
	Kept bool
	// NewestTokenAt is when the newest token of the session's chain was last active (made, or used
	// without rotation): the idle window runs from it.
	NewestTokenAt time.Time
	// SuccessorHash is the stored hash of the token that replaced this one; nil when none did.
	SuccessorHash   []byte
	SuccessorUsedAt *time.Time
}

// RefreshVerdict is what a presented refresh token gets.
type RefreshVerdict int

const (
	// RefreshUnknown: no such token (or not one of ours).
	RefreshUnknown RefreshVerdict = iota
	// RefreshRotate: spend it and hand out its successor.
	RefreshRotate
	// RefreshKeep: a session without rotation; the token stays valid and its use restarts the idle
	// window.
	RefreshKeep
	// RefreshGrace: spent moments ago and its successor is unspent; hand out the same successor again.
	RefreshGrace
	// RefreshReused: spent, and presented again after the grace or after its successor was used:
	// theft. The session ends.
	RefreshReused
	// RefreshExpired: the session passed its idle or absolute end.
	RefreshExpired
	// RefreshRevoked: the session was ended (logout, reset, reuse, an operator).
	RefreshRevoked
	// RefreshDisabled: the account was disabled.
	RefreshDisabled
)

var verdictNames = [...]string{"unknown", "rotate", "keep", "grace", "reused", "expired", "revoked", "disabled"}

func (v RefreshVerdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "invalid"
}

// RefreshRules are the settings the verdict depends on.
type RefreshRules struct {
	IdleTTL time.Duration
	Grace   time.Duration
}

// SessionEnd is when a session whose newest refresh token was last active at newest stops being
// usable: after IdleTTL without a refresh, and never past its absolute end.
func SessionEnd(newest, absoluteEnd time.Time, idleTTL time.Duration) time.Time {
	return earlier(newest.Add(idleTTL), absoluteEnd)
}

// ClassifyRefresh is the one statement of the rotation rule; st is nil for an unknown token. The
// stores' Rotate is an optimisation of its RefreshRotate case (one conditional write instead of a
// read and a write), and a shared store test holds them to it.
func ClassifyRefresh(st *RefreshState, now time.Time, r RefreshRules) RefreshVerdict {
	switch {
	case st == nil:
		return RefreshUnknown
	case st.UserStatus != StatusActive:
		return RefreshDisabled
	case st.RevokedAt != nil:
		return RefreshRevoked
	case st.UsedAt == nil:
		// The unspent token is the tip of its chain, so its own last activity is the session's.
		if !now.Before(SessionEnd(st.tokenActiveAt(), st.ExpiresAt, r.IdleTTL)) {
			return RefreshExpired
		}
		if st.Kept {
			return RefreshKeep
		}
		return RefreshRotate
	case !now.Before(SessionEnd(st.NewestTokenAt, st.ExpiresAt, r.IdleTTL)):
		// A spent token is judged by its session's tip, so a stale stolen token replayed on a live
		// session still trips reuse detection rather than passing as merely expired.
		return RefreshExpired
	case r.Grace > 0 && now.Sub(*st.UsedAt) <= r.Grace && st.SuccessorHash != nil && st.SuccessorUsedAt == nil:
		return RefreshGrace
	default:
		return RefreshReused
	}
}

// tokenActiveAt is when the token was made or, in a session without rotation, last used.
func (st *RefreshState) tokenActiveAt() time.Time {
	if st.TokenLastUsedAt != nil && st.TokenLastUsedAt.After(st.TokenCreatedAt) {
		return *st.TokenLastUsedAt
	}
	return st.TokenCreatedAt
}

func (s *Service) refreshRules() RefreshRules {
	return RefreshRules{IdleTTL: s.cfg.RefreshIdleTTL, Grace: s.cfg.ReuseGrace}
}

// Refresh rotates a refresh token: the old one is spent and a new pair returned. A replay of the same
// token within the grace window gets the same successor (parallel tabs, a retry after a lost
// response); a replay after it, or after the successor was used, is theft: the session ends. In a
// session without rotation the same refresh token comes back with a new access token.
func (s *Service) Refresh(ctx context.Context, refresh string, meta Meta) (TokenPair, error) {
	if !token.LooksLikeRefreshToken(refresh) {
		return TokenPair{}, errInvalidRefresh()
	}
	oldHash := token.HashRefreshToken(refresh)
	successor := token.Successor(s.secret.Refresh[0], refresh)
	// The fast path rotates in one conditional write. When it refuses, the token's state says why;
	// a state that says "rotate" means it changed between the two reads, so the write is tried again
	// once.
	for range 2 {
		r, err := s.store.Rotate(ctx, oldHash, token.HashRefreshToken(successor), s.cfg.RefreshIdleTTL)
		if err == nil {
			g := grant{userID: r.UserID, tenantID: r.TenantID, email: r.Email, role: r.Role, sessionID: r.SessionID, amr: r.AMR, start: r.SessionStart}
			next := successor
			if r.Kept {
				next = refresh
			}
			return s.pair(g, next, SessionEnd(s.Now(), r.ExpiresAt, s.cfg.RefreshIdleTTL))
		}
		if !errors.Is(err, ErrNotFound) {
			return TokenPair{}, internal("rotate", err)
		}
		st, err := s.store.RefreshState(ctx, oldHash)
		var state *RefreshState
		switch {
		case err == nil:
			state = &st
		case !errors.Is(err, ErrNotFound):
			return TokenPair{}, internal("inspect refresh token", err)
		}
		switch v := ClassifyRefresh(state, s.Now(), s.refreshRules()); v {
		case RefreshRotate, RefreshKeep:
			continue
		case RefreshUnknown, RefreshDisabled, RefreshRevoked, RefreshExpired:
			return TokenPair{}, verdictError(v)
		case RefreshGrace:
			if succ, ok := s.derivedSuccessor(refresh, st.SuccessorHash); ok {
				g := grant{userID: st.UserID, tenantID: st.TenantID, email: st.Email, role: st.Role, sessionID: st.SessionID, amr: st.AMR, start: st.SessionStart}
				return s.pair(g, succ, SessionEnd(st.NewestTokenAt, st.ExpiresAt, s.cfg.RefreshIdleTTL))
			}
			// No version of the refresh secret reproduces the successor: it cannot be handed out again,
			// and the replay is treated as the reuse it would be without a grace.
		}
		return TokenPair{}, s.endReusedSession(ctx, st, meta)
	}
	return TokenPair{}, errInvalidRefresh()
}

// verdictError is the answer to a refresh token that cannot be used, for every verdict but reuse,
// which ends the session first.
func verdictError(v RefreshVerdict) error {
	switch v {
	case RefreshDisabled:
		return errDisabled()
	case RefreshRevoked:
		return errSessionRevoked()
	case RefreshExpired:
		return newError(CodeSessionExpired, "The session has expired; log in again.")
	}
	return errInvalidRefresh()
}

func (s *Service) endReusedSession(ctx context.Context, st RefreshState, meta Meta) error {
	ev := meta.event(st.UserID, "refresh_token_reused", "a spent refresh token was presented again; the session was revoked")
	if err := s.store.RevokeSession(ctx, st.UserID, st.SessionID, "refresh_token_reused", ev); err != nil && !errors.Is(err, ErrNotFound) {
		return internal("revoke reused session", err)
	}
	return newError(CodeRefreshReused, "This refresh token was already used; the session has been ended for safety. Log in again.")
}

// derivedSuccessor derives the successor of a spent token again (it is not stored): any version of the
// refresh secret that reproduces the stored hash will do.
func (s *Service) derivedSuccessor(refresh string, storedHash []byte) (string, bool) {
	for _, key := range s.secret.Refresh {
		succ := token.Successor(key, refresh)
		if subtle.ConstantTimeCompare(token.HashRefreshToken(succ), storedHash) == 1 {
			return succ, true
		}
	}
	return "", false
}
