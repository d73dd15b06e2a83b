// Package token issues and verifies JWT access tokens, manages their signing
// keys and JWKS, and mints opaque refresh tokens.
package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Supported signing algorithms.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
	HS256 = "HS256"
)

const (
	rsaBits         = 2048
	minHMACSecret   = 32
	kidRandomBytes  = 12 // 16 base64url characters
	pemPrivateLabel = "PRIVATE KEY"
)

var (
	ErrUnsupportedAlg = errors.New("token: unsupported algorithm")
	// ErrKeyMismatch means the key material does not fit the declared algorithm
	// (wrong type, wrong curve, too short). It is refused rather than coerced so a
	// key can never be used under an algorithm it was not made for.
	ErrKeyMismatch  = errors.New("token: key does not match algorithm")
	ErrMalformedKey = errors.New("token: malformed key")
)

// Key is one signing key. Private holds *ecdsa.PrivateKey (P-256) for ES256,
// ed25519.PrivateKey for EdDSA, *rsa.PrivateKey (>= 2048 bits) for RS256 and
// []byte (>= 32 bytes) for HS256.
type Key struct {
	ID        string
	Alg       string
	Private   any
	CreatedAt time.Time
	RetiredAt *time.Time // nil: may sign; set: verifies only
}

// GenerateKey makes a new key for alg with a random kid. random supplies the kid
// and the EdDSA and HS256 key material; since Go 1.26 ECDSA and RSA key
// generation always draw from the system source, whatever random is.
func GenerateKey(alg string, random io.Reader, now time.Time) (Key, error) {
	if random == nil {
		random = rand.Reader
	}
	kid, err := randomString(random, kidRandomBytes)
	if err != nil {
		return Key{}, err
	}
	var private any
	switch alg {
	case ES256:
		private, err = ecdsa.GenerateKey(elliptic.P256(), random)
	case EdDSA:
		_, private, err = ed25519.GenerateKey(random)
	case RS256:
		private, err = rsa.GenerateKey(random, rsaBits)
	case HS256:
		secret := make([]byte, minHMACSecret)
		_, err = io.ReadFull(random, secret)
		private = secret
	default:
		return Key{}, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("token: generate %s key: %w", alg, err)
	}
	return Key{ID: kid, Alg: alg, Private: private, CreatedAt: now}, nil
}

// MarshalPrivate encodes the private key as PKCS#8 PEM; an HS256 secret is
// returned as its raw bytes.
func MarshalPrivate(k Key) ([]byte, error) {
	if _, err := publicKeyFor(k.Alg, k.Private); err != nil {
		return nil, err
	}
	if k.Alg == HS256 {
		return slices.Clone(k.Private.([]byte)), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("token: marshal %s key: %w", k.Alg, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateLabel, Bytes: der}), nil
}

// ParsePrivate is the inverse of MarshalPrivate. Besides PKCS#8 it accepts the
// SEC 1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY") PEM that openssl
// commonly writes, so operators can bring keys made outside Latch.
func ParsePrivate(id, alg string, data []byte, createdAt time.Time) (Key, error) {
	if id == "" {
		return Key{}, fmt.Errorf("%w: empty kid", ErrMalformedKey)
	}
	var private any
	switch alg {
	case ES256, EdDSA, RS256:
		parsed, err := parsePEMPrivate(data)
		if err != nil {
			return Key{}, err
		}
		private = parsed
	case HS256:
		// A PEM handed over as an HMAC secret is the classic key-confusion
		// mistake (a public key becomes the shared secret): refuse it outright.
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
			return Key{}, fmt.Errorf("%w: HS256 secret looks like a PEM key", ErrKeyMismatch)
		}
		private = slices.Clone(data)
	default:
		return Key{}, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	if _, err := publicKeyFor(alg, private); err != nil {
		return Key{}, err
	}
	return Key{ID: id, Alg: alg, Private: private, CreatedAt: createdAt}, nil
}

func parsePEMPrivate(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformedKey)
	}
	var (
		private any
		err     error
	)
	switch block.Type {
	case pemPrivateLabel:
		private, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		private, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		private, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM type %q", ErrMalformedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	return private, nil
}

// publicKeyFor checks that private fits alg and returns what verifies its
// signatures: the public key, or the secret itself for HS256.
func publicKeyFor(alg string, private any) (any, error) {
	switch alg {
	case ES256:
		if k, ok := private.(*ecdsa.PrivateKey); ok && k.Curve == elliptic.P256() {
			return &k.PublicKey, nil
		}
	case EdDSA:
		if k, ok := private.(ed25519.PrivateKey); ok && len(k) == ed25519.PrivateKeySize {
			return k.Public(), nil
		}
	case RS256:
		if k, ok := private.(*rsa.PrivateKey); ok && k.N != nil && k.N.BitLen() >= rsaBits {
			return &k.PublicKey, nil
		}
	case HS256:
		if k, ok := private.([]byte); ok && len(k) >= minHMACSecret {
			return k, nil
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	return nil, fmt.Errorf("%w: %s wants %s, got %T", ErrKeyMismatch, alg, wantedKey(alg), private)
}

func wantedKey(alg string) string {
	switch alg {
	case ES256:
		return "a P-256 *ecdsa.PrivateKey"
	case EdDSA:
		return "an ed25519.PrivateKey"
	case RS256:
		return "an *rsa.PrivateKey of at least 2048 bits"
	default:
		return "a []byte secret of at least 32 bytes"
	}
}

func randomString(random io.Reader, n int) (string, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", fmt.Errorf("token: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}
