package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	recoveryCount = 10
	recoveryLen   = 10 // symbols, 5 bits each: 50 bits per code

	// recoveryAlphabet is Crockford's base32: no I, L, O or U, and the normaliser maps the letters
	// people confuse with digits onto them. 32 symbols, so a random byte masked to 5 bits picks one
	// without bias.
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

	// recoveryHashLabel separates these hashes from any other HMAC a caller makes with the same key.
	recoveryHashLabel = "latch/totp/recovery-code/v1\x00"

	// MinRecoveryKeyBytes is the shortest server key HashRecoveryCode accepts.
	MinRecoveryKeyBytes = 32
)

// ErrWeakKey means the key given to HashRecoveryCode is shorter than MinRecoveryKeyBytes.
var ErrWeakKey = errors.New("totp: recovery code key too short")

// GenerateRecoveryCodes returns ten distinct one-time codes, each ten symbols (50 bits) shown as
// "xxxxx-xxxxx", for the user to keep. Store only their HashRecoveryCode. random defaults to
// crypto/rand.Reader.
func GenerateRecoveryCodes(random io.Reader) ([]string, error) {
	if random == nil {
		random = rand.Reader
	}
	codes := make([]string, 0, recoveryCount)
	seen := make(map[string]bool, recoveryCount)
	var b [recoveryLen]byte
	for len(codes) < recoveryCount {
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return nil, fmt.Errorf("totp: recovery codes: %w", err)
		}
		var sym [recoveryLen]byte
		for i, x := range b {
			sym[i] = recoveryAlphabet[x&31]
		}
		code := string(sym[:5]) + "-" + string(sym[5:])
		if !seen[code] {
			seen[code] = true
			codes = append(codes, code)
		}
	}
	return codes, nil
}

// NormalizeRecoveryCode turns what a user typed into the canonical ten lower-case symbols: case is
// ignored, spaces and dashes are dropped, and o, i and l are read as 0, 1 and 1. ok is false when
// the result is not a recovery code.
func NormalizeRecoveryCode(input string) (code string, ok bool) {
	// Anything much longer than a code is refused before any work.
	if len(input) > 4*recoveryLen {
		return "", false
	}
	var out strings.Builder
	for i := 0; i < len(input); i++ {
		c := input[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case ' ', '\t', '-':
			continue
		case 'o':
			c = '0'
		case 'i', 'l':
			c = '1'
		}
		if strings.IndexByte(recoveryAlphabet, c) < 0 || out.Len() == recoveryLen {
			return "", false
		}
		out.WriteByte(c)
	}
	if out.Len() != recoveryLen {
		return "", false
	}
	return out.String(), true
}

// IsRecoveryCode tells a recovery code from a TOTP code by shape, so one login field can take
// either: a six-digit code never normalises to ten symbols.
func IsRecoveryCode(input string) bool {
	_, ok := NormalizeRecoveryCode(input)
	return ok
}

// HashRecoveryCode is the value to store for a recovery code: hex HMAC-SHA256 under a server key of
// at least MinRecoveryKeyBytes, over the normalised code, so any spelling the user types maps to the
// same row. Store the ten hashes of a user, look one up by (user, hash) and mark it used in the same
// conditional UPDATE so it works once. Errors: ErrInvalidCode, ErrWeakKey.
func HashRecoveryCode(key []byte, code string) (string, error) {
	if len(key) < MinRecoveryKeyBytes {
		return "", ErrWeakKey
	}
	canonical, ok := NormalizeRecoveryCode(code)
	if !ok {
		return "", ErrInvalidCode
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(recoveryHashLabel))
	m.Write([]byte(canonical))
	return hex.EncodeToString(m.Sum(nil)), nil
}
