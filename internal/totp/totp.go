// Package totp is Latch's TOTP second factor (RFC 6238 with SHA-1, six digits, a 30-second step and
// one step of clock skew either way, the settings every authenticator app understands) and its
// one-time recovery codes.
//
// It holds no state: replay protection needs the last accepted time step of each user, which lives
// in the database, so Validate returns the step it accepted and the caller refuses any step at or
// below the one it stored.
package totp

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	pqtotp "github.com/pquerna/otp/totp"
)

const (
	digits     = 6
	period     = 30 // seconds
	skew       = 1  // steps accepted on either side of the current one
	secretSize = 20 // bytes: the 160 bits RFC 4226 recommends, and the size apps expect

	// minSecretSize is RFC 4226's floor (128 bits) for secrets handed to Validate.
	minSecretSize = 16

	qrSize = 256 // pixels, before the quiet zone
)

var (
	// ErrInvalidCode means the code is not six ASCII digits or matches none of the accepted steps.
	ErrInvalidCode = errors.New("totp: invalid code")
	// ErrInvalidLabel means Generate was given an empty issuer or account, or one with a colon.
	ErrInvalidLabel = errors.New("totp: issuer and account must be non-empty and hold no colon")
	// ErrInvalidSecret means a stored secret is not base32 of at least 128 bits: a bug or a
	// damaged row, never the user's fault.
	ErrInvalidSecret = errors.New("totp: invalid secret")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Enrollment is what the setup step shows the user once.
type Enrollment struct {
	// Secret is 160 random bits in unpadded base32, the form apps accept for manual entry. It is the
	// value to seal and store, and to pass to Validate.
	Secret string
	// URL is the otpauth:// key URI carried by the QR code.
	URL string
	// QRCode is the URL as a PNG image in a data URL, ready for an <img src>.
	QRCode string
}

// Generate makes a new secret for account (the user's email) under issuer (the name the app lists
// the account under). Neither may be empty or hold a colon, the key URI's label separator. random
// defaults to crypto/rand.Reader.
func Generate(issuer, account string, random io.Reader) (Enrollment, error) {
	for _, s := range []string{issuer, account} {
		if strings.TrimSpace(s) == "" || strings.Contains(s, ":") {
			return Enrollment{}, ErrInvalidLabel
		}
	}
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      period,
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        random, // nil means crypto/rand there too
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: generate: %w", err)
	}
	qr, err := qrDataURL(key)
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Secret: key.Secret(), URL: key.URL(), QRCode: qr}, nil
}

// qrDataURL renders the key URI with a white quiet zone around it: the library draws the modules to
// the edge, and scanners want a margin of about four modules to find the code on a dark page.
func qrDataURL(key *otp.Key) (string, error) {
	code, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	margin := qrSize / 8
	canvas := image.NewGray(image.Rect(0, 0, qrSize+2*margin, qrSize+2*margin))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(canvas, code.Bounds().Add(image.Pt(margin, margin)), code, code.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, canvas); err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// Validate checks code against secret at the steps before, at and after now, and returns the step
// (Unix time / 30 s) it matched. The caller must refuse the login when that step is not greater
// than the last one it accepted for the user, then store it, atomically: that is RFC 6238's "one
// use per code", and it holds across instances only through the database.
func Validate(secret, code string, now time.Time) (uint64, error) {
	// The shape check comes first so junk input costs no HMAC.
	if !isTOTPShape(code) {
		return 0, ErrInvalidCode
	}
	canonical, err := canonicalSecret(secret)
	if err != nil {
		return 0, err
	}
	current := floorDiv(now.Unix(), period)
	var step uint64
	matched := false
	// Every candidate is computed and compared, so the time taken does not say which step
	// matched; ascending order makes the latest matching step win, the safer one to record.
	for s := current - skew; s <= current+skew; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(canonical, uint64(s), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, ErrInvalidSecret
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, matched = uint64(s), true
		}
	}
	if !matched {
		return 0, ErrInvalidCode
	}
	return step, nil
}

// canonicalSecret accepts what apps and other libraries write (lower case, padding) and returns
// upper-case unpadded base32.
func canonicalSecret(secret string) (string, error) {
	s := strings.TrimRight(strings.ToUpper(secret), "=")
	raw, err := b32.DecodeString(s)
	if err != nil || len(raw) < minSecretSize {
		return "", ErrInvalidSecret
	}
	return s, nil
}

func isTOTPShape(code string) bool {
	if len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
