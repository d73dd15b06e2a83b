package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/seal"
	"github.com/latch-auth/latch/internal/totp"
)

// proof is how a user proved themselves beside the password; it decides the session's amr claim
// (RFC 8176 values).
type proof int

const (
	// proofEmailCode: a code sent to the user's address. ["pwd","otp"], the claim Latch has always
	// issued for its two-step login.
	proofEmailCode proof = iota
	// proofTOTP: an RFC 6238 code from an authenticator app. "otp" is RFC 8176's value for RFC 6238
	// codes; "mfa" adds that the second factor is a device enrolled for the purpose, independent of
	// the mailbox, which is what a relying party checks to tell it from an emailed code.
	proofTOTP
	// proofRecoveryCode: a one-time recovery code in place of the authenticator. Still two factors
	// ("mfa"), but not an RFC 4226/6238 one-time password, so no "otp": a relying party that wants
	// the authenticator itself sees that it was bypassed.
	proofRecoveryCode
)

// amr is the session's stored form of the claim: the methods, space-separated.
func (p proof) amr() string {
	switch p {
	case proofTOTP:
		return "pwd otp mfa"
	case proofRecoveryCode:
		return "pwd mfa"
	}
	return "pwd otp"
}

func (p proof) String() string {
	switch p {
	case proofTOTP:
		return "totp"
	case proofRecoveryCode:
		return "recovery_code"
	}
	return "email_code"
}

// TOTPSetup is what setup shows the user once: the secret for manual entry, the otpauth:// URI, and
// that URI as a QR code in a PNG data URL.
type TOTPSetup struct {
	Secret     string
	OTPAuthURL string
	QRCode     string
}

func errInvalidOTP() error {
	return newError(CodeInvalidOTP, "The one-time code is wrong, was already used, or is too old.")
}

func errTOTPAlreadyEnabled() error {
	return newError(CodeTOTPAlreadyEnabled, "Two-factor authentication is already on; disable it before setting it up again.")
}

// SetupTOTP starts enrolling an authenticator app for the caller after checking their password. The
// secret is sealed before it is stored; it stays pending until EnableTOTP sees a first code from it.
// Setting up again before enabling replaces the pending secret.
func (s *Service) SetupTOTP(ctx context.Context, p Principal, password string, meta Meta) (TOTPSetup, error) {
	var v Validation
	s.checkPresentedPassword(&v, "password", password)
	if err := v.Err(); err != nil {
		return TOTPSetup{}, err
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return TOTPSetup{}, err
	}
	if me.TOTPEnabled {
		return TOTPSetup{}, errTOTPAlreadyEnabled()
	}
	u, err := s.checkPassword(ctx, me.TenantID, me.Email, password, meta)
	if err != nil {
		return TOTPSetup{}, err
	}
	if err := s.passed(ctx, loginSubject(me.TenantID, me.Email)); err != nil {
		return TOTPSetup{}, err
	}
	account := u.Email
	if strings.Contains(account, ":") {
		// The key URI's label cannot carry a colon, which a quoted local part may hold.
		account = u.ID
	}
	enr, err := totp.Generate(s.cfg.TOTPIssuer, account, s.Random)
	if err != nil {
		return TOTPSetup{}, internal("generate totp secret", err)
	}
	sealed, err := s.secret.TOTP.Seal([]byte(enr.Secret), []byte(u.ID))
	if err != nil {
		return TOTPSetup{}, internal("seal totp secret", err)
	}
	ev := meta.event(u.ID, "totp_setup", "")
	err = s.store.SetPendingTOTP(ctx, u.ID, sealed, ev)
	if errors.Is(err, ErrConflict) {
		return TOTPSetup{}, errTOTPAlreadyEnabled()
	}
	if err != nil {
		return TOTPSetup{}, internal("store totp secret", err)
	}
	return TOTPSetup{Secret: enr.Secret, OTPAuthURL: enr.URL, QRCode: enr.QRCode}, nil
}

// TOTPEnableInput is the first code from the authenticator app. Secret, when given (Directus clients
// send back the secret they were shown), must be the one of the pending setup.
type TOTPEnableInput struct {
	Code   string
	Secret string
	Meta   Meta
}

// EnableTOTP turns the pending authenticator on once it produces a valid code, and returns ten
// recovery codes to show the user once; only their HMACs are kept. From then on the user logs in
// with a code from the app instead of an emailed one.
func (s *Service) EnableTOTP(ctx context.Context, p Principal, in TOTPEnableInput) ([]string, error) {
	var v Validation
	code := checkCode(&v, "otp", in.Code)
	if err := v.Err(); err != nil {
		return nil, err
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	if me.TOTPEnabled {
		return nil, errTOTPAlreadyEnabled()
	}
	f, err := s.store.TOTPFactor(ctx, me.ID)
	if errors.Is(err, ErrNotFound) || err == nil && f.EnabledAt != nil {
		return nil, newError(CodeTOTPSetupRequired, "There is no authenticator setup to enable; set one up first.")
	}
	if err != nil {
		return nil, internal("load totp factor", err)
	}
	secret, err := s.openTOTPSecret(f)
	if err != nil {
		return nil, err
	}
	if in.Secret != "" && !sameSecret(in.Secret, secret) {
		v.Add("secret", "is not the secret of the pending setup")
		return nil, v.Err()
	}
	subject := loginSubject(me.TenantID, me.Email)
	ev := in.Meta.event(me.ID, "", me.Email)
	if err := s.checkThrottle(ctx, subject, ev); err != nil {
		return nil, err
	}
	step, err := totp.Validate(secret, code, s.Now())
	if errors.Is(err, totp.ErrInvalidCode) {
		if err := s.recordFailure(ctx, subject, ev); err != nil {
			return nil, err
		}
		return nil, errInvalidOTP()
	}
	if err != nil {
		return nil, internal("validate totp code", err)
	}
	codes, err := totp.GenerateRecoveryCodes(s.Random)
	if err != nil {
		return nil, internal("recovery codes", err)
	}
	hashes := make([]string, 0, len(codes))
	for _, c := range codes {
		h, err := totp.HashRecoveryCode(s.secret.Code[0], c)
		if err != nil {
			return nil, internal("hash recovery code", err)
		}
		hashes = append(hashes, h)
	}
	ev.Kind, ev.Detail = "totp_enabled", ""
	err = s.store.EnableTOTP(ctx, EnableTOTP{UserID: me.ID, Sealed: f.Secret, Step: int64(step), RecoveryHashes: hashes, Event: ev})
	if errors.Is(err, ErrNotFound) {
		// Another request enabled it, replaced the setup, or took this step first.
		return nil, errInvalidOTP()
	}
	if err != nil {
		return nil, internal("enable totp", err)
	}
	s.sendChangeNotice(ctx, me, mail.TOTPEnabled, in.Meta, false)
	return codes, nil
}

// TOTPDisableInput turns the authenticator off with a code from it (or a recovery code) and, where
// the surface's contract asks for it, the password.
type TOTPDisableInput struct {
	Code            string
	Password        string
	RequirePassword bool
	Meta            Meta
}

// DisableTOTP turns the caller's authenticator off: they log in with emailed codes again.
func (s *Service) DisableTOTP(ctx context.Context, p Principal, in TOTPDisableInput) error {
	var v Validation
	if in.RequirePassword || in.Password != "" {
		s.checkPresentedPassword(&v, "password", in.Password)
	}
	code := checkOTP(&v, "otp", in.Code)
	if code == "" {
		v.Add("otp", "is required")
	}
	if err := v.Err(); err != nil {
		return err
	}
	me, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if !me.TOTPEnabled {
		return newError(CodeTOTPNotEnabled, "Two-factor authentication is not on.")
	}
	subject := loginSubject(me.TenantID, me.Email)
	if in.Password != "" {
		if _, err := s.checkPassword(ctx, me.TenantID, me.Email, in.Password, in.Meta); err != nil {
			return err
		}
	} else if err := s.checkThrottle(ctx, subject, in.Meta.event(me.ID, "", me.Email)); err != nil {
		return err
	}
	if _, err := s.checkAuthenticator(ctx, &me, code, subject, in.Meta); err != nil {
		return err
	}
	if err := s.passed(ctx, subject); err != nil {
		return err
	}
	ev := in.Meta.event(me.ID, "totp_disabled", "")
	ev.SessionID = p.Claims.SessionID
	err = s.store.DisableTOTP(ctx, me.ID, ev)
	if errors.Is(err, ErrNotFound) {
		return newError(CodeTOTPNotEnabled, "Two-factor authentication is not on.")
	}
	if err != nil {
		return internal("disable totp", err)
	}
	s.sendChangeNotice(ctx, me, mail.TOTPDisabled, in.Meta, false)
	return nil
}

// checkAuthenticator accepts a code from u's enabled authenticator or one of its recovery codes. A
// TOTP step is taken by one conditional write, so a code works once on any instance; a recovery code
// is spent the same way. A wrong, reused or old code counts as a failed login of subject.
func (s *Service) checkAuthenticator(ctx context.Context, u *User, code, subject string, meta Meta) (proof, error) {
	fail := func() (proof, error) {
		if err := s.recordFailure(ctx, subject, meta.event(u.ID, "", u.Email+": wrong one-time code")); err != nil {
			return 0, err
		}
		return 0, errInvalidOTP()
	}
	if totp.IsRecoveryCode(code) {
		hashes := make([]string, 0, len(s.secret.Code))
		for _, key := range s.secret.Code {
			h, err := totp.HashRecoveryCode(key, code)
			if err != nil {
				return 0, internal("hash recovery code", err)
			}
			hashes = append(hashes, h)
		}
		err := s.store.UseRecoveryCode(ctx, u.ID, hashes)
		if errors.Is(err, ErrNotFound) {
			return fail()
		}
		if err != nil {
			return 0, internal("use recovery code", err)
		}
		return proofRecoveryCode, nil
	}
	f, err := s.store.TOTPFactor(ctx, u.ID)
	if errors.Is(err, ErrNotFound) || err == nil && f.EnabledAt == nil {
		return fail()
	}
	if err != nil {
		return 0, internal("load totp factor", err)
	}
	secret, err := s.openTOTPSecret(f)
	if err != nil {
		return 0, err
	}
	step, err := totp.Validate(secret, code, s.Now())
	if errors.Is(err, totp.ErrInvalidCode) {
		return fail()
	}
	if err != nil {
		return 0, internal("validate totp code", err)
	}
	err = s.store.AcceptTOTPStep(ctx, u.ID, int64(step))
	if errors.Is(err, ErrNotFound) {
		return fail()
	}
	if err != nil {
		return 0, internal("accept totp step", err)
	}
	s.resealIfOld(ctx, f, secret)
	return proofTOTP, nil
}

// resealIfOld seals a secret again under the current key version when it was sealed under an older
// one, so that after a rotation of secrets.totp_key the previous key is needed only until each user's
// next login. A failure is only logged: the login itself has succeeded.
func (s *Service) resealIfOld(ctx context.Context, f TOTPFactor, secret string) {
	if v, err := seal.KeyVersion(f.Secret); err != nil || v == s.secret.TOTP.CurrentVersion() {
		return
	}
	sealed, err := s.secret.TOTP.Seal([]byte(secret), []byte(f.UserID))
	if err == nil {
		err = s.store.ResealTOTP(ctx, f.UserID, f.Secret, sealed)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.ErrorContext(ctx, "reseal totp secret", "err", err)
	}
}

// openTOTPSecret unseals a stored secret; it only opens for the user it was sealed for.
func (s *Service) openTOTPSecret(f TOTPFactor) (string, error) {
	plain, err := s.secret.TOTP.Open(f.Secret, []byte(f.UserID))
	if err != nil {
		return "", internal("open totp secret", err)
	}
	return string(plain), nil
}

// sameSecret compares a secret as a client spelled it with the stored one: base32 is case-blind and
// padding is optional.
func sameSecret(given, stored string) bool {
	given = strings.TrimRight(strings.ToUpper(strings.TrimSpace(given)), "=")
	return subtle.ConstantTimeCompare([]byte(given), []byte(stored)) == 1
}
