package token

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AccessTokenType is the JOSE "typ" of access tokens (RFC 9068), so an ID
// token or any other JWT signed by the same key cannot pass as one.
const AccessTokenType = "at+jwt"

// ClockLeeway is the tolerance on exp and iat. Several instances sign and
// verify; a few milliseconds of skew would otherwise reject a token issued by a
// host whose clock runs slightly ahead (iat is whole seconds).
const ClockLeeway = 5 * time.Second

// maxTokenBytes bounds the input before any decoding; our tokens are well
// under 1 KiB, so anything much larger is not ours and not worth parsing.
const maxTokenBytes = 8 << 10

var (
	// ErrInvalid is returned for every token that is not acceptable except one
	// that is merely expired; it wraps the cause.
	ErrInvalid = errors.New("token: invalid access token")
	// ErrExpired is returned for a genuine token (signature, issuer, audience
	// all good) whose exp has passed.
	ErrExpired = errors.New("token: access token expired")
	// ErrMalformed (always wrapped in ErrInvalid) means the input is not a JWT at all: not three
	// base64url segments of JSON. Surfaces that tell "cannot decode" from "not valid" use it.
	ErrMalformed = errors.New("token: not a decodable JWT")
	// ErrUnknownKey (always wrapped in ErrInvalid) means the kid is not in the
	// key set; another instance may have rotated keys, so reload and retry.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrNoSigningKey means a key set holds no active key of the configured alg.
	ErrNoSigningKey = errors.New("token: no active signing key for the configured algorithm")
	ErrDuplicateKey = errors.New("token: duplicate kid")
	ErrConfig       = errors.New("token: invalid configuration")

	errMissingKID    = errors.New("missing kid")
	errWrongType     = errors.New("wrong typ header")
	errAlgMismatch   = errors.New("header alg does not match the key's alg")
	errMissingClaim  = errors.New("missing required claim")
	errTokenTooLarge = errors.New("token too large")
)

// Claims are the access token claims Latch reads and writes.
type Claims struct {
	Issuer    string   // iss: chosen by Issue, never by the caller
	Subject   string   // sub: user id
	SessionID string   // sid
	TenantID  string   // tid
	ID        string   // jti
	Email     string   // email
	Role      string   // role
	Audience  []string // aud
	AMR       []string // amr
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuthTime is when the user proved themselves, i.e. when the session began (auth_time, as in
	// OpenID Connect and RFC 9068); it stays the same across refreshes. Zero leaves the claim out.
	AuthTime time.Time
}

type Config struct {
	// Issuer is the iss of tokens issued without one of their own, and, when IssuerOf is nil, the
	// only iss Verify accepts.
	Issuer    string
	Audience  string
	AccessTTL time.Duration
	Alg       string
	// IssuerOf, when set, names the iss of a tenant's tokens: Issue writes IssuerOf(tid), and Verify
	// accepts a token only if its iss equals IssuerOf(its tid). The acceptable issuers are thus those
	// of existing tenants, and a token cannot borrow another tenant's. An error (an unknown tenant)
	// refuses the token.
	IssuerOf func(tenantID string) (string, error)
}

// Issuer signs with the newest active key of cfg.Alg and verifies with any key
// in its set, found by kid. It is safe for concurrent use.
type Issuer struct {
	cfg     Config
	now     func() time.Time
	random  io.Reader
	method  jwt.SigningMethod
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	keys    atomic.Pointer[keySet]
}

// keySet is everything derived from a []Key, computed once per SetKeys so a
// request never parses keys or encodes JWKS.
type keySet struct {
	signingKID string
	signingKey any
	verify     map[string]verifyKey
	jwks       []byte
	verified   *verifiedCache
}

type verifyKey struct {
	alg    string
	public any
}

// NewIssuer checks cfg and keys. now defaults to time.Now and random to
// crypto/rand.Reader; random must be safe for concurrent use.
func NewIssuer(cfg Config, keys []Key, now func() time.Time, random io.Reader) (*Issuer, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.AccessTTL <= 0 {
		return nil, fmt.Errorf("%w: issuer, audience and a positive access TTL are required", ErrConfig)
	}
	method := signingMethod(cfg.Alg)
	if method == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, cfg.Alg)
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Reader
	}
	i := &Issuer{cfg: cfg, now: now, random: random, method: method}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Alg}),
		jwt.WithAudience(cfg.Audience),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(ClockLeeway),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
	}
	if cfg.IssuerOf == nil {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	i.parser = jwt.NewParser(opts...)
	i.keyFunc = i.lookupKey
	if err := i.SetKeys(keys); err != nil {
		return nil, err
	}
	return i, nil
}

func signingMethod(alg string) jwt.SigningMethod {
	switch alg {
	case ES256:
		return jwt.SigningMethodES256
	case EdDSA:
		return jwt.SigningMethodEdDSA
	case RS256:
		return jwt.SigningMethodRS256
	case HS256:
		return jwt.SigningMethodHS256
	}
	return nil
}

// SetKeys replaces the key set, e.g. after another instance rotated keys. On
// error the previous set stays in effect.
func (i *Issuer) SetKeys(keys []Key) error {
	set, err := buildKeySet(i.cfg.Alg, keys)
	if err != nil {
		return err
	}
	i.keys.Store(set)
	return nil
}

func buildKeySet(alg string, keys []Key) (*keySet, error) {
	set := &keySet{verify: make(map[string]verifyKey, len(keys)), verified: newVerifiedCache(verifiedCacheSize)}
	var signer *Key
	for idx := range keys {
		k := &keys[idx]
		if k.ID == "" {
			return nil, fmt.Errorf("%w: empty kid", ErrMalformedKey)
		}
		if _, dup := set.verify[k.ID]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, k.ID)
		}
		public, err := publicKeyFor(k.Alg, k.Private)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		set.verify[k.ID] = verifyKey{alg: k.Alg, public: public}
		if k.Alg == alg && k.RetiredAt == nil && (signer == nil || newer(k, signer)) {
			signer = k
		}
	}
	if signer == nil {
		return nil, ErrNoSigningKey
	}
	set.signingKID, set.signingKey = signer.ID, signer.Private

	// Newest first, so a reader of the JWKS sees the current key on top.
	ordered := slices.Clone(keys)
	slices.SortFunc(ordered, func(a, b Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var published []jwk
	for _, k := range ordered {
		j, ok, err := publicJWK(k.ID, k.Alg, set.verify[k.ID].public)
		if err != nil {
			return nil, err
		}
		if ok {
			published = append(published, j)
		}
	}
	jwks, err := marshalJWKS(published)
	if err != nil {
		return nil, err
	}
	set.jwks = jwks
	return set, nil
}

// newer breaks CreatedAt ties by kid so every instance picks the same signer.
func newer(a, b *Key) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

type wireClaims struct {
	jwt.RegisteredClaims
	SessionID string   `json:"sid,omitempty"`
	TenantID  string   `json:"tid,omitempty"`
	Email     string   `json:"email,omitempty"`
	Role      string   `json:"role,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
}

// Validate is called by the jwt parser after the signature checks out.
func (c wireClaims) Validate() error {
	if c.Subject == "" {
		return fmt.Errorf("%w: %w: sub", jwt.ErrTokenRequiredClaimMissing, errMissingClaim)
	}
	if c.SessionID == "" {
		return fmt.Errorf("%w: %w: sid", jwt.ErrTokenRequiredClaimMissing, errMissingClaim)
	}
	return nil
}

// Issue signs c after filling iss (the tenant's with IssuerOf), aud, jti, iat and exp; the caller
// supplies Subject, SessionID, TenantID, Email, Role and AMR. expiresAt is the exp claim.
func (i *Issuer) Issue(c Claims) (token string, expiresAt time.Time, err error) {
	set := i.keys.Load()
	jti, err := randomString(i.random, 16)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	expiresAt = now.Add(i.cfg.AccessTTL).Truncate(time.Second)
	iss := i.cfg.Issuer
	if i.cfg.IssuerOf != nil {
		if iss, err = i.cfg.IssuerOf(c.TenantID); err != nil {
			return "", time.Time{}, fmt.Errorf("token: issuer of tenant %q: %w", c.TenantID, err)
		}
	}
	wc := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		SessionID: c.SessionID,
		TenantID:  c.TenantID,
		Email:     c.Email,
		Role:      c.Role,
		AMR:       c.AMR,
	}
	if !c.AuthTime.IsZero() {
		wc.AuthTime = c.AuthTime.Unix()
	}
	t := jwt.NewWithClaims(i.method, wc)
	t.Header["kid"] = set.signingKID
	t.Header["typ"] = AccessTokenType
	token, err = t.SignedString(set.signingKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return token, expiresAt, nil
}

// Verify checks signature (algorithm pinned to cfg.Alg and to the key's own
// alg), typ, iss (against its tenant's with IssuerOf), aud, exp, iat, sub and
// sid. Every error is ErrExpired or ErrInvalid.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, errTokenTooLarge)
	}
	set := i.keys.Load()
	c, ok := set.verified.get(token)
	if !ok || !i.now().Before(c.ExpiresAt.Add(ClockLeeway)) {
		var err error
		c, err = i.verifyUncached(token)
		if err != nil && !errors.Is(err, ErrExpired) {
			return Claims{}, err
		}
		// The issuer is checked before an expired token is reported as merely expired, so a token
		// that is both expired and foreign is invalid.
		if issErr := i.checkIssuer(c); issErr != nil {
			return Claims{}, issErr
		}
		if err != nil {
			return Claims{}, err
		}
		set.verified.put(token, c)
		return c, nil
	}
	// A tenant's issuer can change while its tokens sit in the cache: checked on every use.
	if err := i.checkIssuer(c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

var errForeignIssuer = errors.New("iss is not the issuer of the token's tenant")

// checkIssuer applies IssuerOf; without it the parser has pinned cfg.Issuer already.
func (i *Issuer) checkIssuer(c Claims) error {
	if i.cfg.IssuerOf == nil {
		return nil
	}
	want, err := i.cfg.IssuerOf(c.TenantID)
	if err != nil {
		return fmt.Errorf("%w: %w: tenant %q: %w", ErrInvalid, jwt.ErrTokenInvalidIssuer, c.TenantID, err)
	}
	if c.Issuer != want {
		return fmt.Errorf("%w: %w: %w", ErrInvalid, jwt.ErrTokenInvalidIssuer, errForeignIssuer)
	}
	return nil
}

// verifyUncached is the full check: signature, header and claims.
func (i *Issuer) verifyUncached(token string) (Claims, error) {
	var wc wireClaims
	_, err := i.parser.ParseWithClaims(token, &wc, i.keyFunc)
	switch {
	case err == nil:
	case onlyExpired(err):
		// The signature checked out (claims are validated after it), so the claims are genuine and
		// the caller may still judge their issuer.
		err = fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, fmt.Errorf("%w: %w: %w", ErrInvalid, ErrMalformed, err)
	default:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{
		Issuer:    wc.Issuer,
		Subject:   wc.Subject,
		SessionID: wc.SessionID,
		TenantID:  wc.TenantID,
		ID:        wc.ID,
		Email:     wc.Email,
		Role:      wc.Role,
		Audience:  []string(wc.Audience),
		AMR:       wc.AMR,
		ExpiresAt: wc.ExpiresAt.Time, // required, so never nil here
	}
	if wc.IssuedAt != nil {
		c.IssuedAt = wc.IssuedAt.Time
	}
	if wc.AuthTime != 0 {
		c.AuthTime = time.Unix(wc.AuthTime, 0)
	}
	return c, err
}

// onlyExpired reports whether exp is the sole complaint. The parser reports
// claim failures together, and a token that is both expired and, say, for
// another audience must not be passed off as merely expired.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenNotValidYet, jwt.ErrTokenRequiredClaimMissing, jwt.ErrInvalidType,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

func (i *Issuer) lookupKey(t *jwt.Token) (any, error) {
	typ, _ := t.Header["typ"].(string)
	if !isAccessTokenType(typ) {
		return nil, errWrongType
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errMissingKID
	}
	k, ok := i.keys.Load().verify[kid]
	if !ok {
		return nil, ErrUnknownKey
	}
	if k.alg != t.Method.Alg() {
		return nil, errAlgMismatch
	}
	return k.public, nil
}

// isAccessTokenType accepts "at+jwt" and its full media type form, compared
// case-insensitively as media types are (RFC 9068 section 4).
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == AccessTokenType || typ == "application/"+AccessTokenType
}

// JWKS returns the public keys as a JWK Set. HS256 keys are never published.
func (i *Issuer) JWKS() []byte {
	return slices.Clone(i.keys.Load().jwks)
}
