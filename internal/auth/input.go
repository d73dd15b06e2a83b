package auth

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/latch-auth/latch/internal/totp"
)

const maxEmailLen = 254

// normalizeEmail trims and lower-cases an address and checks its syntax only: no DNS, so reserved
// test domains work in a sandbox.
func normalizeEmail(v *Validation, field, raw string) string {
	e := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case e == "":
		v.Add(field, "is required")
	case len(e) > maxEmailLen:
		v.Add(field, "must be at most 254 characters")
	default:
		a, err := mail.ParseAddress(e)
		if err != nil || a.Name != "" || a.Address != e || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") && !strings.HasSuffix(e, "@localhost") {
			v.Add(field, "must be a valid email address")
		}
	}
	return e
}

// checkNewPassword applies the length policy (NIST SP 800-63B: length, no composition rules).
func (s *Service) checkNewPassword(v *Validation, field, pw string) {
	n := utf8.RuneCountInString(pw)
	switch {
	case pw == "":
		v.Add(field, "is required")
	case n < s.cfg.PasswordMinLength:
		v.Add(field, "must be at least "+strconv.Itoa(s.cfg.PasswordMinLength)+" characters")
	case n > s.cfg.PasswordMaxLength:
		v.Add(field, "must be at most "+strconv.Itoa(s.cfg.PasswordMaxLength)+" characters")
	}
}

// checkPresentedPassword bounds a password being checked, so an oversize one costs no hash.
func (s *Service) checkPresentedPassword(v *Validation, field, pw string) {
	switch {
	case pw == "":
		v.Add(field, "is required")
	case utf8.RuneCountInString(pw) > s.cfg.PasswordMaxLength:
		v.Add(field, "must be at most "+strconv.Itoa(s.cfg.PasswordMaxLength)+" characters")
	}
}

// checkCode requires exactly six ASCII digits.
func checkCode(v *Validation, field, code string) string {
	code = strings.TrimSpace(code)
	if code == "" {
		v.Add(field, "is required")
		return code
	}
	if !isEmailCode(code) {
		v.Add(field, "must be six digits")
	}
	return code
}

// isEmailCode tells six ASCII digits: the shape of emailed codes and of TOTP codes alike.
func isEmailCode(code string) bool {
	return len(code) == 6 && strings.Trim(code, "0123456789") == ""
}

// checkOTP accepts the optional second step of a login: "" (none), six digits (an emailed or TOTP
// code) or a recovery code.
func checkOTP(v *Validation, field, otp string) string {
	otp = strings.TrimSpace(otp)
	if otp != "" && !isEmailCode(otp) && !totp.IsRecoveryCode(otp) {
		v.Add(field, "must be six digits or a recovery code")
	}
	return otp
}
