package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argon2Hash is a parsed "$argon2id$v=19$m=..,t=..,p=..$salt$key" string. params.SaltLen and
// params.KeyLen are the decoded lengths, so params compares directly with a Hasher's.
type argon2Hash struct {
	params Params
	salt   []byte
	key    []byte
}

// PHC strings use unpadded standard base64; Strict rejects non-zero trailing bits, so each hash
// has exactly one spelling.
var phcBase64 = base64.RawStdEncoding.Strict()

// decodePHCBase64 also rejects CR and LF, which encoding/base64 skips silently even in Strict mode.
func decodePHCBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: line break in base64", ErrMalformedHash)
	}
	return phcBase64.DecodeString(s)
}

func (a argon2Hash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, a.params.Memory, a.params.Iterations, a.params.Parallelism,
		phcBase64.EncodeToString(a.salt), phcBase64.EncodeToString(a.key))
}

func parseArgon2(encoded string) (argon2Hash, error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return argon2Hash{}, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	if fields[2] != "v=19" {
		return argon2Hash{}, fmt.Errorf("%w: argon2 version %q, want v=19", ErrMalformedHash, fields[2])
	}
	memory, iterations, parallelism, err := parseArgon2Params(fields[3])
	if err != nil {
		return argon2Hash{}, err
	}
	salt, err := decodePHCBase64(fields[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return argon2Hash{}, fmt.Errorf("%w: salt must be %d to %d bytes of unpadded base64", ErrMalformedHash, minSaltLen, maxSaltLen)
	}
	key, err := decodePHCBase64(fields[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return argon2Hash{}, fmt.Errorf("%w: key must be %d to %d bytes of unpadded base64", ErrMalformedHash, minKeyLen, maxKeyLen)
	}
	return argon2Hash{
		params: Params{
			Memory:      memory,
			Iterations:  iterations,
			Parallelism: uint8(parallelism),
			SaltLen:     uint32(len(salt)),
			KeyLen:      uint32(len(key)),
		},
		salt: salt,
		key:  key,
	}, nil
}

// parseArgon2Params reads "m=<KiB>,t=<passes>,p=<lanes>", in that order, as PHC specifies.
func parseArgon2Params(s string) (memory, iterations, parallelism uint32, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("%w: want m=,t=,p= parameters, got %q", ErrMalformedHash, s)
	}
	m, mOK := strings.CutPrefix(parts[0], "m=")
	t, tOK := strings.CutPrefix(parts[1], "t=")
	p, pOK := strings.CutPrefix(parts[2], "p=")
	if !mOK || !tOK || !pOK {
		return 0, 0, 0, fmt.Errorf("%w: want m=,t=,p= parameters, got %q", ErrMalformedHash, s)
	}
	parallelism, ok := parseDecimal(p)
	if !ok || parallelism < 1 || parallelism > maxParallelism {
		return 0, 0, 0, fmt.Errorf("%w: p=%s outside [1, %d]", ErrMalformedHash, p, maxParallelism)
	}
	memory, ok = parseDecimal(m)
	if !ok || memory < 8*parallelism || memory > maxMemoryKiB {
		return 0, 0, 0, fmt.Errorf("%w: m=%s outside [8*p, %d]", ErrMalformedHash, m, maxMemoryKiB)
	}
	iterations, ok = parseDecimal(t)
	if !ok || iterations < 1 || iterations > maxIterations {
		return 0, 0, 0, fmt.Errorf("%w: t=%s outside [1, %d]", ErrMalformedHash, t, maxIterations)
	}
	return memory, iterations, parallelism, nil
}

// parseDecimal accepts only canonical decimals: digits, no sign, no leading zero.
func parseDecimal(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func isBcrypt(encoded string) bool { return strings.HasPrefix(encoded, "$2") }

// checkBcrypt accepts exactly "$2a$", "$2b$" or "$2y$", a two-digit cost within bounds, and 53
// characters of bcrypt's base64 (22 salt, 31 hash). x/crypto/bcrypt alone would take other minor
// versions, any cost up to 31, and trailing bytes.
func checkBcrypt(encoded string) error {
	const bcryptLen = 60
	if len(encoded) != bcryptLen {
		return fmt.Errorf("%w: bcrypt hash must be %d characters", ErrMalformedHash, bcryptLen)
	}
	switch encoded[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return fmt.Errorf("%w: bcrypt prefix %q", ErrMalformedHash, encoded[:4])
	}
	cost, ok := parseDecimal(strings.TrimPrefix(encoded[4:6], "0"))
	if !ok || int(cost) < bcrypt.MinCost || cost > maxBcryptCost || encoded[6] != '$' {
		return fmt.Errorf("%w: bcrypt cost %q outside [%d, %d]", ErrMalformedHash, encoded[4:6], bcrypt.MinCost, maxBcryptCost)
	}
	for _, c := range []byte(encoded[7:]) {
		if !isBcryptBase64(c) {
			return fmt.Errorf("%w: bcrypt salt and hash must be bcrypt base64", ErrMalformedHash)
		}
	}
	return nil
}

func isBcryptBase64(c byte) bool {
	return c == '.' || c == '/' || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}
