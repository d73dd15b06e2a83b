package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/latch-auth/latch/internal/token"
)

// Credentials is an email + password for a tenant ("" = the default tenant). On a login, OTP is the
// second step when the client sends both at once: the emailed code, a TOTP code or a recovery code.
// On a registration, Locale is the language tag of the new account's emails ("" = the tenant's).
type Credentials struct {
	Email    string
	Password string
	OTP      string
	TenantID string
	Locale   string
	Meta     Meta
}

// CodeInput is an email + emailed code.
type CodeInput struct {
	Email    string
	Code     string
	TenantID string
	// Password, on a sign-up code, becomes the account's password: how an invitee chooses theirs.
	// Whoever holds the code proved the address, so it may set it, as registering again would.
	Password string
	Meta     Meta
}

// TokenPair is what a successful validate or refresh returns, with who it is for so surfaces can
// answer in their own shapes without decoding the access token.
type TokenPair struct {
	AccessToken      string
	RefreshToken     string
	ExpiresIn        int64 // seconds
	RefreshExpiresIn int64 // seconds until the session's idle or absolute end, whichever is first
	// RefreshExpiresAt is that end as a time, for surfaces that answer it as a Unix time.
	RefreshExpiresAt time.Time
	SessionID        string
	UserID           string
	TenantID         string
	Email            string
	Role             string
}

// LoginResult is the answer to a login: how long the emailed code lives or, when the login carried its
// one-time code (or the tenant's second step is off), the tokens themselves.
type LoginResult struct {
	ExpiresIn int64
	Tokens    *TokenPair
}

// How a session's user proved themselves, as stored and as the amr claim lists it (RFC 8176 values):
// a password, then (unless the tenant turned the second step off) an emailed one-time code. The
// authenticator app's proofs are in factors.go.
const (
	amrPasswordAndCode = "pwd otp"
	amrPasswordOnly    = "pwd"
)

// lookup finds the user of an email, or nil when there is none.
func (s *Service) lookup(ctx context.Context, tenantID, email string) (*User, error) {
	c, err := s.lookupCredential(ctx, tenantID, email)
	if c == nil {
		return nil, err
	}
	return &c.User, err
}

// lookupCredential is lookup with the password hash, for the password check alone.
func (s *Service) lookupCredential(ctx context.Context, tenantID, email string) (*Credential, error) {
	c, err := s.store.UserByEmail(ctx, tenantID, email)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, internal("find user", err)
	}
	return &c, nil
}

// Register creates an account and emails a signup code. A taken address answers the same and gets a
// notice instead, so the endpoint cannot be used to learn who has an account.
func (s *Service) Register(ctx context.Context, in Credentials) error {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	s.checkNewPassword(&v, "password", in.Password)
	checkLocale(&v, "locale", in.Locale)
	tenant, err := s.requestTenant(ctx, &v, in.TenantID)
	if err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	// Hash before looking the address up, so a taken address costs the same time as a free one.
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return hashErr("hash password", err)
	}
	u, err := s.lookup(ctx, tenant.ID, email)
	if err != nil {
		return err
	}
	if u == nil {
		// The language is the account's from its creation: registering again, perhaps by someone else
		// who cannot read the mailbox, does not change it.
		nu := User{TenantID: tenant.ID, Email: email, Locale: in.Locale}
		// Recorded with the user (a transaction rather than one statement) for the user.created webhook.
		err := s.store.CreateUser(ctx, &nu, hash, in.Meta.event("", "user_registered", ""))
		switch {
		case errors.Is(err, ErrConflict): // a concurrent registration won
			if u, err = s.lookup(ctx, tenant.ID, email); err != nil || u == nil {
				return internal("find user after conflict", err)
			}
		case err != nil:
			return internal("create user", err)
		default:
			u = &nu
		}
	}
	if u.EmailVerifiedAt != nil {
		// The answer must not depend on the notice's own limits, or it would tell a taken address
		// from a free one.
		if err := s.sendNotice(ctx, *u, tenant, in.Meta); isLimited(err) {
			s.log.InfoContext(ctx, "already-registered notice not sent", "reason", ErrorCode(err))
		} else if err != nil {
			return err
		}
		return nil
	}
	// Not verified yet: a fresh code that carries this registration's password. Whoever validates a
	// code proves the address, so the password that takes effect is the one registered with that code;
	// someone squatting an address they cannot read gets nothing.
	return s.sendCode(ctx, *u, tenant, PurposeSignup, hash, Event{})
}

// ValidateRegister exchanges a signup code for a session and marks the address verified.
func (s *Service) ValidateRegister(ctx context.Context, in CodeInput) (TokenPair, error) {
	return s.validate(ctx, in, PurposeSignup, "signup_validated")
}

// ValidateLogin exchanges a login code for a session; it also proves the address.
func (s *Service) ValidateLogin(ctx context.Context, in CodeInput) (TokenPair, error) {
	return s.validate(ctx, in, PurposeLogin, "login")
}

func (s *Service) validate(ctx context.Context, in CodeInput, purpose, event string) (TokenPair, error) {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	code := checkCode(&v, "emailToken", in.Code)
	if in.Password != "" && purpose == PurposeSignup {
		s.checkNewPassword(&v, "password", in.Password)
	}
	tenant, err := s.requestTenant(ctx, &v, in.TenantID)
	if err != nil {
		return TokenPair{}, err
	}
	if err := v.Err(); err != nil {
		return TokenPair{}, err
	}
	u, err := s.lookup(ctx, tenant.ID, email)
	if err != nil {
		return TokenPair{}, err
	}
	if purpose == PurposeLogin && u != nil && u.TOTPEnabled {
		// A login code sent before the user turned the authenticator on must not skip it.
		return TokenPair{}, invalidCode(nil)
	}
	codeID, err := s.checkCode(ctx, u, purpose, code)
	if err != nil {
		return TokenPair{}, err
	}
	if !u.Active() {
		return TokenPair{}, errDisabled()
	}
	if in.Password != "" && purpose == PurposeSignup {
		// Hashed only once the code checked out, so a wrong code costs no hash.
		hash, err := s.hasher.Hash(ctx, in.Password)
		if err != nil {
			return TokenPair{}, hashErr("hash password", err)
		}
		return s.openSessionWith(ctx, *u, tenant, codeID, amrPasswordAndCode, in.Meta, event, hash)
	}
	return s.openSession(ctx, *u, tenant, codeID, amrPasswordAndCode, in.Meta, event)
}

// Login checks the password and starts the second step: it emails a login code, or for a user with an
// authenticator app asks for its code (otp_required) and sends nothing. When the credentials carry
// the one-time code already, or the tenant's second step is off, it answers the tokens at once. It
// works for accounts whose address is not verified yet: the code proves the address.
func (s *Service) Login(ctx context.Context, in Credentials) (LoginResult, error) {
	pair, step, err := s.signIn(ctx, in)
	switch {
	case err != nil:
		return LoginResult{}, err
	case step == stepCodeEmailed:
		return LoginResult{ExpiresIn: int64(s.cfg.CodeTTL / time.Second)}, nil
	case step == stepAuthenticator:
		return LoginResult{}, errOTPRequired(step)
	}
	return LoginResult{Tokens: &pair}, nil
}

// SignInInput is a login on a surface whose clients log in with one call: the credentials, and on the
// second call the one-time code the first call asked for.
type SignInInput = Credentials

// SignIn is the two steps of a login as two calls of one operation, for the surfaces whose clients
// cannot make two different calls (Directus, GraphQL, Devii). Without OTP it checks the password,
// starts the second step as Login does and answers otp_required, saying whether a code was emailed;
// with OTP it checks the password again and the code, and returns the tokens. For a tenant whose
// second step is off the first call answers tokens, and an OTP sent along is not looked at, unless
// the user turned an authenticator app on: a factor the user chose is always asked for.
func (s *Service) SignIn(ctx context.Context, in SignInInput) (TokenPair, error) {
	pair, step, err := s.signIn(ctx, in)
	if err != nil {
		return TokenPair{}, err
	}
	if step != stepDone {
		return TokenPair{}, errOTPRequired(step)
	}
	return pair, nil
}

// secondStep is where a login stands after signIn.
type secondStep int

const (
	stepDone          secondStep = iota // the session is open
	stepCodeEmailed                     // a login code is on its way
	stepAuthenticator                   // the user must send a code from their authenticator app
)

func errOTPRequired(step secondStep) error {
	if step == stepAuthenticator {
		return &Error{Code: CodeOTPRequired, Authenticator: true,
			Detail: "Two-factor authentication is on and no code was emailed: send the code from your authenticator app (or a recovery code) as otp with the same credentials."}
	}
	return newError(CodeOTPRequired, "A one-time code was emailed; send it as otp with the same credentials.")
}

// signIn is the one login operation behind Login and SignIn.
func (s *Service) signIn(ctx context.Context, in Credentials) (TokenPair, secondStep, error) {
	var v Validation
	email := normalizeEmail(&v, "email", in.Email)
	s.checkPresentedPassword(&v, "password", in.Password)
	tenant, err := s.requestTenant(ctx, &v, in.TenantID)
	if err != nil {
		return TokenPair{}, 0, err
	}
	otp := strings.TrimSpace(in.OTP)
	if tenant.Settings.SecondStep != SecondStepOff {
		otp = checkOTP(&v, "otp", in.OTP)
	}
	if err := v.Err(); err != nil {
		return TokenPair{}, 0, err
	}
	u, err := s.checkPassword(ctx, tenant.ID, email, in.Password, in.Meta)
	if err != nil {
		return TokenPair{}, 0, err
	}
	subject := loginSubject(tenant.ID, email)
	if u.TOTPEnabled {
		// The password alone settles nothing here: the failure count is reset only once the
		// authenticator code is right too, or guesses at the code would never be throttled.
		if otp == "" {
			return TokenPair{}, stepAuthenticator, nil
		}
		proof, err := s.checkAuthenticator(ctx, u, otp, subject, in.Meta)
		if err != nil {
			return TokenPair{}, 0, err
		}
		if err := s.passed(ctx, subject); err != nil {
			return TokenPair{}, 0, err
		}
		pair, err := s.openSession(ctx, *u, tenant, "", proof.amr(), in.Meta, "login")
		return pair, stepDone, err
	}
	if err := s.passed(ctx, subject); err != nil {
		return TokenPair{}, 0, err
	}
	if tenant.Settings.SecondStep == SecondStepOff {
		pair, err := s.openSession(ctx, *u, tenant, "", amrPasswordOnly, in.Meta, "login")
		return pair, stepDone, err
	}
	if otp == "" {
		return TokenPair{}, stepCodeEmailed, s.sendCode(ctx, *u, tenant, PurposeLogin, "", Event{})
	}
	if !isEmailCode(otp) {
		return TokenPair{}, 0, invalidCode(nil)
	}
	codeID, err := s.checkCode(ctx, u, PurposeLogin, otp)
	if err != nil {
		return TokenPair{}, 0, err
	}
	pair, err := s.openSession(ctx, *u, tenant, codeID, amrPasswordAndCode, in.Meta, "login")
	return pair, stepDone, err
}

// checkPassword is the throttled password check shared by login, password change and the TOTP
// settings. A failure is counted; a success is not yet: the caller calls passed once the whole
// operation has proved the user.
func (s *Service) checkPassword(ctx context.Context, tenant, email, plain string, meta Meta) (*User, error) {
	subject := loginSubject(tenant, email)
	// The address attempted is the detail, so the log tells attacks on unknown addresses apart; erasing
	// a user scrubs it (see Users.DeleteUser).
	ev := meta.event("", "", email)
	ev.TenantID = tenant
	if err := s.checkThrottle(ctx, subject, ev); err != nil {
		return nil, err
	}
	c, err := s.lookupCredential(ctx, tenant, email)
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Spend the same hashing work as a real check so timing does not reveal the account.
		if err := s.hasher.VerifyDummy(ctx, plain); err != nil {
			return nil, hashErr("verify dummy", err)
		}
		if err := s.recordFailure(ctx, subject, ev); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials()
	}
	u := &c.User
	ev.UserID = u.ID
	ok, rehash, err := s.hasher.Verify(ctx, c.PasswordHash, plain)
	if err != nil {
		return nil, hashErr("verify password", err)
	}
	if !ok {
		if err := s.recordFailure(ctx, subject, ev); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials()
	}
	if !u.Active() {
		return nil, errDisabled()
	}
	if rehash {
		// An imported bcrypt hash or older parameters: upgrade now that we hold the plain password.
		if h, err := s.hasher.Hash(ctx, plain); err == nil {
			if err := s.store.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.log.Error("rehash password", "err", err)
			}
		}
	}
	return u, nil
}

// passed forgets the failed checks of a login subject once the user has proved themselves.
func (s *Service) passed(ctx context.Context, subject string) error {
	if err := s.store.ResetFailures(ctx, subject); err != nil {
		return internal("reset failures", err)
	}
	return nil
}

// openSession consumes the code (if any) and creates the session in one transaction, then signs the
// access token. Only a code proves the address; a password alone (second step off) does not.
func (s *Service) openSession(ctx context.Context, u User, tenant Tenant, codeID, amr string, meta Meta, event string) (TokenPair, error) {
	return s.openSessionWith(ctx, u, tenant, codeID, amr, meta, event, "")
}

// openSessionWith is openSession that also sets the user's password hash in its transaction.
func (s *Service) openSessionWith(ctx context.Context, u User, tenant Tenant, codeID, amr string, meta Meta, event, passwordHash string) (TokenPair, error) {
	refresh, err := token.NewRefreshToken(s.Random)
	if err != nil {
		return TokenPair{}, internal("refresh token", err)
	}
	ev := meta.event(u.ID, event, "")
	sess, err := s.store.OpenSession(ctx, NewSession{
		CodeID: codeID, UserID: u.ID, TenantID: u.TenantID, MarkVerified: codeID != "", AMR: amr,
		RefreshRotation: tenant.Settings.RefreshRotation,
		IP:              ev.IP, UserAgent: ev.UserAgent, IdleTTL: s.cfg.RefreshIdleTTL, MaxAge: s.cfg.SessionMaxAge,
		RefreshHash: token.HashRefreshToken(refresh), PasswordHash: passwordHash, Event: ev,
	})
	if errors.Is(err, ErrCodeDead) {
		return TokenPair{}, invalidCode(nil)
	}
	if err != nil {
		return TokenPair{}, internal("open session", err)
	}
	g := grant{userID: u.ID, tenantID: u.TenantID, email: u.Email, role: u.Role, sessionID: sess.ID, amr: amr, start: sess.CreatedAt}
	return s.pair(g, refresh, sess.Ends())
}

// grant is whom an access token is for and how they proved it.
type grant struct {
	userID, tenantID, email, role, sessionID string
	amr                                      string    // as stored: space separated
	start                                    time.Time // when the session was opened: the auth_time claim
}

// pair signs an access token for g (the signer gives it the issuer of g's tenant) beside the refresh
// token.
func (s *Service) pair(g grant, refresh string, refreshEnd time.Time) (TokenPair, error) {
	role := g.role
	if role == "" {
		role = DefaultRole
	}
	access, exp, err := s.signer.Issue(token.Claims{Subject: g.userID, SessionID: g.sessionID,
		TenantID: g.tenantID, Email: g.email, Role: role, AMR: strings.Fields(g.amr), AuthTime: g.start})
	if err != nil {
		return TokenPair{}, internal("sign access token", err)
	}
	// The token's exp is in whole seconds from its truncated iat, so what remains of it is up to a
	// second short of its lifetime: counted up, a 15-minute token says 900, never 899. The session's
	// end was set moments ago by the store, in this request: rounded, 7 days say 604800.
	now := s.Now()
	return TokenPair{AccessToken: access, RefreshToken: refresh, SessionID: g.sessionID,
		UserID: g.userID, TenantID: g.tenantID, Email: g.email, Role: role,
		ExpiresIn: int64((exp.Sub(now) + time.Second - 1) / time.Second), RefreshExpiresIn: int64(refreshEnd.Sub(now).Round(time.Second) / time.Second),
		RefreshExpiresAt: refreshEnd}, nil
}
