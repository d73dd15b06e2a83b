// Package seal encrypts small values at rest (TOTP secrets, outbox payloads that carry live email
// codes, signing keys and generated server secrets) with AES-256-GCM under versioned server
// secrets.
//
// A Keyring holds every version of a secret: the current one seals, all of them open, so a secret
// can be rotated while older ciphertexts stay readable until they are re-sealed. Each use asks the
// keyring for a Box bound to a Purpose; the AES key of a box is derived with HKDF-SHA256 from the
// secret and the purpose label, so a value sealed for one purpose never opens under another, and
// one configured secret serves every purpose. Seal and Open take associated data that binds a
// ciphertext to its row (a user id, for instance), so it cannot be copied onto another row.
//
// Sealed values describe themselves: they carry a format marker and the key version. The binary
// form starts with a 0xFF byte, which never occurs in UTF-8 text, and suits bytea/blob columns; the
// text form, "sealed:v1:<key version>:<base64url>", suits text columns. Open accepts both.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Purpose names what a Box protects; it is mixed into key derivation. Changing a label makes every
// value sealed under it unreadable, so labels are fixed once data exists.
type Purpose string

// The purposes Latch seals values for. They live here so two features can never pick the same label
// by accident.
const (
	PurposeTOTP          Purpose = "totp"
	PurposeOutbox        Purpose = "outbox"
	PurposeSigningKeys   Purpose = "signing-keys"
	PurposeServerSecrets Purpose = "server-secrets"
)

// MinSecretBytes is the least secret material a keyring accepts: the derived keys are AES-256, and
// a shorter secret would be the weakest link.
const MinSecretBytes = 32

var (
	// ErrFormat means the value is not a sealed value this package can read (plain text, a
	// truncated or mangled value, or an unknown format version).
	ErrFormat = errors.New("seal: not a sealed value")
	// ErrUnknownVersion means the value was sealed under a key version the keyring does not hold:
	// a retired secret was dropped too early, or this instance is missing a newer one.
	ErrUnknownVersion = errors.New("seal: sealed under an unknown key version")
	// ErrTampered means authentication failed: the bytes were altered, the purpose or associated
	// data differ from the ones used to seal, or the secret behind that version number changed.
	ErrTampered = errors.New("seal: authentication failed")
	// ErrSecret means a secret is unusable as keyring material (too short, bad or duplicate
	// version). Its messages never include the secret.
	ErrSecret = errors.New("seal: unusable secret")
)

// Secret is one version of a server secret. Version 0 is invalid so a zero Secret is caught.
type Secret struct {
	Version  uint32
	Material []byte
}

const (
	textPrefix   = "sealed:"
	textPrefixV1 = "sealed:v1:"

	// binaryMagic opens the binary form: 0xFF cannot start (or appear in) valid UTF-8, so no text
	// stored in plain is ever taken for a ciphertext; the last byte is the format version.
	binaryMarker = 0xFF
	binaryMagic  = "\xffsl\x01"
	headerLen    = len(binaryMagic) + 4
	nonceLen     = 12
	tagLen       = 16
	minSealedLen = headerLen + nonceLen + tagLen

	hkdfSalt = "latch/seal"
	hkdfInfo = "latch/seal/v1/aes-256-gcm\x00"
)

var b64 = base64.RawURLEncoding.Strict()

// ParseSecret reads a configured secret of the form "[v<VERSION>:]MATERIAL", e.g.
// "v2:Zm9vYmFy...". Without the prefix the version is 1. Surrounding whitespace is trimmed (so a
// key file ending in a newline means the same as the environment variable), and the remaining
// text itself, as UTF-8 bytes, is the material: it is not base64-decoded, so any printable string of
// at least MinSecretBytes bytes works, and `openssl rand -base64 32` is a good way to make one. A
// secret that itself begins with "v<digits>:" must be written with an explicit prefix.
func ParseSecret(text string) (Secret, error) {
	text = strings.TrimSpace(text)
	s := Secret{Version: 1}
	if rest, ok := strings.CutPrefix(text, "v"); ok {
		if num, material, ok := strings.Cut(rest, ":"); ok && isDecimal(num) {
			v, err := strconv.ParseUint(num, 10, 32)
			if err != nil || v == 0 || num[0] == '0' {
				return Secret{}, fmt.Errorf("%w: version must be a number from 1 to %d", ErrSecret, uint32(1<<32-1))
			}
			s.Version, text = uint32(v), material
		}
	}
	if len(text) < MinSecretBytes {
		return Secret{}, fmt.Errorf("%w: want at least %d bytes of material, got %d", ErrSecret, MinSecretBytes, len(text))
	}
	s.Material = []byte(text)
	return s, nil
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Keyring holds the versions of one server secret. It is immutable and safe for concurrent use.
type Keyring struct {
	current uint32
	secrets map[uint32][]byte
	random  io.Reader
}

// NewKeyring seals with current and opens with current and every previous secret. random supplies
// nonces and defaults to crypto/rand.Reader; it must be safe for concurrent use.
func NewKeyring(current Secret, previous []Secret, random io.Reader) (*Keyring, error) {
	k := &Keyring{current: current.Version, secrets: make(map[uint32][]byte, 1+len(previous)), random: random}
	if k.random == nil {
		k.random = rand.Reader
	}
	for _, s := range append([]Secret{current}, previous...) {
		if s.Version == 0 {
			return nil, fmt.Errorf("%w: version 0", ErrSecret)
		}
		if len(s.Material) < MinSecretBytes {
			return nil, fmt.Errorf("%w: version %d has %d bytes of material, want at least %d", ErrSecret, s.Version, len(s.Material), MinSecretBytes)
		}
		if _, dup := k.secrets[s.Version]; dup {
			return nil, fmt.Errorf("%w: version %d given twice", ErrSecret, s.Version)
		}
		// A copy, so a caller reusing its buffer cannot change the keys under us.
		k.secrets[s.Version] = append([]byte(nil), s.Material...)
	}
	return k, nil
}

// CurrentVersion is the version new values are sealed under; a value whose KeyVersion differs is
// due for re-sealing.
func (k *Keyring) CurrentVersion() uint32 { return k.current }

// Box seals and opens values for one purpose. It is safe for concurrent use.
type Box struct {
	current uint32
	aeads   map[uint32]cipher.AEAD
	random  io.Reader
}

// For derives the keys of purpose p from every secret version. Derivation happens once here, so a
// Box is meant to be kept, not built per call.
func (k *Keyring) For(p Purpose) (*Box, error) {
	if p == "" {
		return nil, errors.New("seal: empty purpose")
	}
	b := &Box{current: k.current, aeads: make(map[uint32]cipher.AEAD, len(k.secrets)), random: k.random}
	for v, material := range k.secrets {
		key, err := hkdf.Key(sha256.New, material, []byte(hkdfSalt), hkdfInfo+string(p), 32)
		if err != nil {
			return nil, fmt.Errorf("seal: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		b.aeads[v] = aead
	}
	return b, nil
}

// CurrentVersion is the key version the box seals under; a stored value whose KeyVersion differs is
// due for re-sealing.
func (b *Box) CurrentVersion() uint32 { return b.current }

// Seal encrypts plaintext under the current version in the binary form (for bytea/blob columns).
// aad is not stored; the same bytes must be given to Open.
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	hdr := header(b.current)
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plaintext)+tagLen)
	copy(out, hdr[:])
	// Random nonces under one key are safe for about 2^32 seals; per-purpose keys and rotation keep
	// every key far below that.
	if _, err := io.ReadFull(b.random, out[headerLen:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return b.aeads[b.current].Seal(out, out[headerLen:], plaintext, additional(hdr, aad)), nil
}

// SealText is Seal in the text form "sealed:v1:<key version>:<base64url of nonce and ciphertext>",
// for text columns.
func (b *Box) SealText(plaintext, aad []byte) (string, error) {
	sealed, err := b.Seal(plaintext, aad)
	if err != nil {
		return "", err
	}
	return textPrefixV1 + strconv.FormatUint(uint64(b.current), 10) + ":" + b64.EncodeToString(sealed[headerLen:]), nil
}

// Open decrypts a value made by Seal or SealText (either form) with the same purpose and aad. Errors
// wrap ErrFormat, ErrUnknownVersion or ErrTampered.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	version, body, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := b.aeads[version]
	if !ok {
		return nil, fmt.Errorf("%w: version %d", ErrUnknownVersion, version)
	}
	// A non-nil destination so an empty plaintext opens as empty, not nil.
	plaintext, err := aead.Open(make([]byte, 0, len(body)-nonceLen-tagLen), body[:nonceLen], body[nonceLen:], additional(header(version), aad))
	if err != nil {
		return nil, ErrTampered
	}
	return plaintext, nil
}

// IsSealed reports whether stored is in a sealed form (of any format version), as opposed to a value
// still stored in plain. It looks at the marker only: a marked but damaged value is still "sealed",
// and Open reports what is wrong with it, so corruption is never mistaken for plaintext.
func IsSealed(stored []byte) bool {
	return (len(stored) > 0 && stored[0] == binaryMarker) || strings.HasPrefix(string(stored), textPrefix)
}

// KeyVersion returns the key version a value was sealed under, without decrypting it; a re-sealing
// job compares it with Keyring.CurrentVersion.
func KeyVersion(sealed []byte) (uint32, error) {
	v, _, err := parse(sealed)
	return v, err
}

// header is the canonical binary header of a version; both forms authenticate it, so the format
// version and the key version cannot be swapped without failing Open.
func header(version uint32) [headerLen]byte {
	var h [headerLen]byte
	copy(h[:], binaryMagic)
	binary.BigEndian.PutUint32(h[len(binaryMagic):], version)
	return h
}

// additional prefixes the caller's associated data with the fixed-length header, which keeps the
// concatenation unambiguous.
func additional(hdr [headerLen]byte, aad []byte) []byte {
	return append(hdr[:], aad...)
}

// parse returns the key version and the nonce followed by the ciphertext.
func parse(sealed []byte) (uint32, []byte, error) {
	if len(sealed) > 0 && sealed[0] == binaryMarker {
		if len(sealed) < minSealedLen || string(sealed[:len(binaryMagic)]) != binaryMagic {
			return 0, nil, ErrFormat
		}
		return binary.BigEndian.Uint32(sealed[len(binaryMagic):headerLen]), sealed[headerLen:], nil
	}
	rest, ok := strings.CutPrefix(string(sealed), textPrefixV1)
	if !ok {
		return 0, nil, ErrFormat
	}
	num, enc, ok := strings.Cut(rest, ":")
	if !ok || !isDecimal(num) || num[0] == '0' {
		return 0, nil, ErrFormat
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, nil, ErrFormat
	}
	body, err := b64.DecodeString(enc)
	// The decoder skips CR and LF; re-encoding insists on the one canonical spelling.
	if err != nil || len(body) < nonceLen+tagLen || b64.EncodeToString(body) != enc {
		return 0, nil, ErrFormat
	}
	return uint32(v), body, nil
}
