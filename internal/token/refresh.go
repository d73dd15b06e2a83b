package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// RefreshTokenPrefix marks refresh tokens so secret scanners can spot leaked ones.
const RefreshTokenPrefix = "lrt_"

const (
	refreshEntropyBytes = 32 // 256 bits; also the HMAC-SHA256 size, so successors look alike
	refreshTokenLen     = len(RefreshTokenPrefix) + (refreshEntropyBytes*8+5)/6
)

// NewRefreshToken returns "lrt_" followed by 32 random bytes in unpadded base64url.
func NewRefreshToken(random io.Reader) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	var raw [refreshEntropyBytes]byte
	if _, err := io.ReadFull(random, raw[:]); err != nil {
		return "", fmt.Errorf("token: read random: %w", err)
	}
	return encodeRefresh(raw[:]), nil
}

// HashRefreshToken is what the store keeps instead of the token.
func HashRefreshToken(t string) []byte {
	sum := sha256.Sum256([]byte(t))
	return sum[:]
}

// Successor derives the next token of a chain from its parent. Being a pure
// function of (secret, parent), a parent replayed within the grace window gets
// the very successor it got the first time, and no plain token is stored.
// Knowing the successor does not reveal the parent or the next one without
// the secret.
func Successor(secret []byte, parent string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parent))
	var sum [sha256.Size]byte
	return encodeRefresh(mac.Sum(sum[:0]))
}

func encodeRefresh(raw []byte) string {
	var buf [refreshTokenLen]byte
	copy(buf[:], RefreshTokenPrefix)
	base64.RawURLEncoding.Encode(buf[len(RefreshTokenPrefix):], raw)
	return string(buf[:])
}

// LooksLikeRefreshToken is a cheap shape check to run before hashing and a
// database look-up: prefix, exact length, base64url alphabet, and the unused
// low bits of the last character zero, as in every token we mint.
func LooksLikeRefreshToken(t string) bool {
	if len(t) != refreshTokenLen || !strings.HasPrefix(t, RefreshTokenPrefix) {
		return false
	}
	body := t[len(RefreshTokenPrefix):]
	for i := 0; i < len(body); i++ {
		if base64Value(body[i]) < 0 {
			return false
		}
	}
	// 43 characters carry 258 bits for 256 of data: the last 2 bits are zero.
	return base64Value(body[len(body)-1])&0b11 == 0
}

func base64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
