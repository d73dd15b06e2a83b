package auth

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/latch-auth/latch/internal/totp"
)

const maxEmailLen = 254

// lookupDomain maps a domain the way a resolver would (UTS #46: case, width and compatibility
// folding, Punycode), so every spelling of one domain is stored as the same ASCII name.
var lookupDomain = idna.Lookup

// normalizeEmail trims an address, refuses characters that can make two spellings of one address
// look alike or look like another one, and folds it to one spelling: NFC, lower case, the domain in
// its ASCII (IDNA) form. It checks syntax only: no DNS, so reserved test domains work in a sandbox.
func normalizeEmail(v *Validation, field, raw string) string {
	e := strings.TrimSpace(raw)
	switch {
	case e == "":
		v.Add(field, "is required")
		return e
	case len(e) > maxEmailLen*4:
		v.Add(field, "must be at most 254 characters")
		return ""
	case !utf8.ValidString(e):
		v.Add(field, "must be valid UTF-8")
		return ""
	}
	if strings.IndexFunc(e, hiddenRune) >= 0 {
		v.Add(field, "must not contain control, invisible or bidirectional-override characters")
		return ""
	}
	e = norm.NFC.String(strings.ToLower(norm.NFC.String(e)))
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 {
		v.Add(field, "must be a valid email address")
		return e
	}
	local, domain := e[:at], e[at+1:]
	if !norm.NFKC.IsNormalString(local) {
		v.Add(field, "must not contain compatibility characters such as fullwidth letters")
		return e
	}
	ascii, err := lookupDomain.ToASCII(domain)
	if err != nil {
		v.Add(field, "must be a valid email address")
		return e
	}
	// Judged on the Unicode form, so a domain given in Punycode is held to the same rule.
	if unicodeDomain, _ := lookupDomain.ToUnicode(ascii); mixedScripts(local) || mixedScripts(unicodeDomain) {
		v.Add(field, "must not mix letters of different scripts")
		return e
	}
	e = local + "@" + ascii
	if len(e) > maxEmailLen {
		v.Add(field, "must be at most 254 characters")
		return e
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e || !strings.Contains(ascii, ".") && ascii != "localhost" {
		v.Add(field, "must be a valid email address")
	}
	return e
}

// hiddenRune reports characters that do not show, or change how their neighbours show: controls,
// format characters (zero-width spaces and joiners, bidirectional overrides and isolates, the BOM),
// unusual spaces and separators, private-use characters, variation selectors, and the letters that
// render as blanks.
func hiddenRune(r rune) bool {
	switch {
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp, unicode.Variation_Selector):
		return true
	case r != ' ' && unicode.Is(unicode.Zs, r):
		return true // the non-ASCII spaces pass for something else; a plain one is a syntax error
	}
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800', '\u034F':
		return true
	}
	return false
}

// confusableScripts are the scripts whose letters pass for each other (Latin "a", Cyrillic "а",
// Greek "α"...). A name mixing two of them is how a homoglyph address imitates another; a genuine
// one, like a genuine domain name, keeps to one.
var confusableScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek}

func mixedScripts(s string) bool {
	seen := -1
	for _, r := range s {
		for i, script := range confusableScripts {
			if unicode.Is(script, r) {
				if seen >= 0 && seen != i {
					return true
				}
				seen = i
			}
		}
	}
	return false
}

// CleanText makes a client-supplied string safe to store and to show: bytes that are not UTF-8 become
// U+FFFD, control characters go (Postgres refuses NUL in text), and the result is cut to at most
// maxBytes on a character boundary, never inside one.
func CleanText(s string, maxBytes int) string {
	if utf8.ValidString(s) && len(s) <= maxBytes && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
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
