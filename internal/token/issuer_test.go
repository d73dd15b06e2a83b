package token

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			key := mustKey(t, alg, t0.Add(-time.Hour))
			iss := mustIssuer(t, testConfig(alg), []Key{key}, fixedClock(t0.Add(300*time.Millisecond)))

			tok, expiresAt, err := iss.Issue(userClaims())
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if !expiresAt.Equal(t0.Add(testTTL)) {
				t.Errorf("expiresAt = %v, want %v", expiresAt, t0.Add(testTTL))
			}
			wantHeader := map[string]any{"alg": alg, "kid": key.ID, "typ": "at+jwt"}
			if diff := cmp.Diff(wantHeader, decodeSegment(t, tok, 0)); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}

			got, err := iss.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(got.ID) != 22 {
				t.Errorf("jti %q: want 22 characters (16 random bytes)", got.ID)
			}
			want := userClaims()
			want.Issuer = testIssuer
			want.Audience = []string{testAudience}
			want.ID = got.ID
			want.IssuedAt = t0
			want.ExpiresAt = t0.Add(testTTL)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueIgnoresCallerRegisteredClaims(t *testing.T) {
	iss := mustIssuer(t, testConfig(ES256), []Key{mustKey(t, ES256, t0)}, fixedClock(t0))
	c := userClaims()
	c.Issuer, c.Audience, c.ID = "https://evil.test", []string{"other"}, "chosen"
	c.ExpiresAt = t0.Add(100 * 24 * time.Hour)
	tok, _, err := iss.Issue(c)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	got, err := iss.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Issuer != testIssuer || got.ID == "chosen" || !got.ExpiresAt.Equal(t0.Add(testTTL)) ||
		!cmp.Equal(got.Audience, []string{testAudience}) {
		t.Errorf("caller-supplied registered claims leaked into the token: %+v", got)
	}
}

func TestIssueGivesEachTokenItsOwnJTI(t *testing.T) {
	iss := mustIssuer(t, testConfig(EdDSA), []Key{mustKey(t, EdDSA, t0)}, fixedClock(t0))
	seen := map[string]bool{}
	for range 50 {
		c, err := iss.Verify(mustIssue(t, iss))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %q issued twice", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestJWKSVerifiesWithGoJose(t *testing.T) {
	wantFields := map[string][]string{
		ES256: {"alg", "crv", "kid", "kty", "use", "x", "y"},
		EdDSA: {"alg", "crv", "kid", "kty", "use", "x"},
		RS256: {"alg", "e", "kid", "kty", "n", "use"},
	}
	for _, alg := range asymAlgs {
		t.Run(alg, func(t *testing.T) {
			key := mustKey(t, alg, t0)
			iss := mustIssuer(t, testConfig(alg), []Key{key}, fixedClock(t0))
			tok := mustIssue(t, iss)

			var raw struct{ Keys []map[string]any }
			if err := json.Unmarshal(iss.JWKS(), &raw); err != nil {
				t.Fatalf("JWKS is not JSON: %v", err)
			}
			if len(raw.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(raw.Keys))
			}
			var fields []string
			for name := range raw.Keys[0] {
				fields = append(fields, name)
			}
			slices.Sort(fields)
			if diff := cmp.Diff(wantFields[alg], fields); diff != "" {
				t.Errorf("JWK fields (-want +got):\n%s", diff)
			}

			var set jose.JSONWebKeySet
			if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
				t.Fatalf("go-jose cannot read our JWKS: %v", err)
			}
			found := set.Key(key.ID)
			if len(found) != 1 {
				t.Fatalf("go-jose finds %d keys for kid %q, want 1", len(found), key.ID)
			}
			jwk := found[0]
			if jwk.Algorithm != alg || jwk.Use != "sig" || !jwk.IsPublic() || !jwk.Valid() {
				t.Errorf("JWK alg=%q use=%q public=%v valid=%v", jwk.Algorithm, jwk.Use, jwk.IsPublic(), jwk.Valid())
			}

			sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose cannot parse our token: %v", err)
			}
			payload, err := sig.Verify(jwk.Key)
			if err != nil {
				t.Fatalf("go-jose rejects our signature with our JWK: %v", err)
			}
			var claims struct{ Sub, Sid string }
			if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub != "user-1" || claims.Sid != "sess-1" {
				t.Errorf("payload %s (err %v)", payload, err)
			}

			// The same check with another key's JWK must fail, or it proves nothing.
			other := mustIssuer(t, testConfig(alg), []Key{mustKey(t, alg, t0)}, fixedClock(t0))
			var otherSet jose.JSONWebKeySet
			if err := json.Unmarshal(other.JWKS(), &otherSet); err != nil {
				t.Fatal(err)
			}
			if _, err := sig.Verify(otherSet.Keys[0].Key); err == nil {
				t.Error("go-jose accepted our token under an unrelated key")
			}
		})
	}
}

func jwksKIDs(t *testing.T, iss *Issuer) []string {
	t.Helper()
	var set struct {
		Keys []struct{ Kid string }
	}
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	kids := []string{}
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestJWKSNeverPublishesHMACKeys(t *testing.T) {
	hmacKey := mustKey(t, HS256, t0)
	iss := mustIssuer(t, testConfig(HS256), []Key{hmacKey}, fixedClock(t0))
	if diff := cmp.Diff(`{"keys":[]}`, string(iss.JWKS())); diff != "" {
		t.Errorf("JWKS (-want +got):\n%s", diff)
	}

	retired := t0
	ecKey := mustKey(t, ES256, t0.Add(-time.Hour))
	ecKey.RetiredAt = &retired
	if err := iss.SetKeys([]Key{hmacKey, ecKey}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	if diff := cmp.Diff([]string{ecKey.ID}, jwksKIDs(t, iss)); diff != "" {
		t.Errorf("published kids (-want +got):\n%s", diff)
	}
	if strings.Contains(string(iss.JWKS()), base64.RawURLEncoding.EncodeToString(hmacKey.Private.([]byte))) {
		t.Error("JWKS contains the HMAC secret")
	}
}

func TestJWKSIsACopy(t *testing.T) {
	iss := mustIssuer(t, testConfig(ES256), []Key{mustKey(t, ES256, t0)}, fixedClock(t0))
	first := iss.JWKS()
	want := string(first)
	clear(first)
	if got := string(iss.JWKS()); got != want {
		t.Error("changing a returned JWKS changed the issuer's copy")
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := mustKey(t, ES256, t0.Add(-48*time.Hour))
	iss := mustIssuer(t, testConfig(ES256), []Key{oldKey}, fixedClock(t0))
	oldToken := mustIssue(t, iss)

	newKey := mustKey(t, ES256, t0.Add(-time.Minute))
	retired := t0.Add(-time.Minute)
	retiredOld := oldKey
	retiredOld.RetiredAt = &retired
	if err := iss.SetKeys([]Key{retiredOld, newKey}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	newToken := mustIssue(t, iss)
	if kid := decodeSegment(t, newToken, 0)["kid"]; kid != newKey.ID {
		t.Errorf("new token kid = %v, want the new key %q", kid, newKey.ID)
	}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := iss.Verify(tok); err != nil {
			t.Errorf("%s token after rotation: %v", name, err)
		}
	}
	if diff := cmp.Diff([]string{newKey.ID, oldKey.ID}, jwksKIDs(t, iss)); diff != "" {
		t.Errorf("JWKS kids, newest first (-want +got):\n%s", diff)
	}

	// Once the old key is dropped its tokens fail, marked so a caller knows a
	// reload might help.
	if err := iss.SetKeys([]Key{newKey}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	_, err := iss.Verify(oldToken)
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old token after its key is gone: err = %v, want ErrInvalid wrapping ErrUnknownKey", err)
	}
}

func TestSigningKeyChoice(t *testing.T) {
	retired := t0
	older := mustKey(t, ES256, t0.Add(-2*time.Hour))
	newer := mustKey(t, ES256, t0.Add(-time.Hour))
	newestRetired := mustKey(t, ES256, t0.Add(-time.Minute))
	newestRetired.RetiredAt = &retired
	newestOtherAlg := mustKey(t, EdDSA, t0)

	iss := mustIssuer(t, testConfig(ES256), []Key{older, newer, newestRetired, newestOtherAlg}, fixedClock(t0))
	if kid := decodeSegment(t, mustIssue(t, iss), 0)["kid"]; kid != newer.ID {
		t.Errorf("token kid = %v, want the newest active ES256 key %q", kid, newer.ID)
	}
}

func TestSetKeysRejectsBadSetsAndKeepsTheOldOne(t *testing.T) {
	good := mustKey(t, ES256, t0)
	retired := t0
	retiredKey := mustKey(t, ES256, t0)
	retiredKey.RetiredAt = &retired
	ed := mustKey(t, EdDSA, t0)
	twin := mustKey(t, ES256, t0)
	twin.ID = good.ID
	mismatched := good
	mismatched.ID, mismatched.Alg = "mismatched", EdDSA
	noID := mustKey(t, ES256, t0)
	noID.ID = ""

	cases := []struct {
		name string
		keys []Key
		want error
	}{
		{"empty", nil, ErrNoSigningKey},
		{"only retired", []Key{retiredKey}, ErrNoSigningKey},
		{"only another alg", []Key{ed}, ErrNoSigningKey},
		{"duplicate kid", []Key{good, twin}, ErrDuplicateKey},
		{"key not of its alg", []Key{good, mismatched}, ErrKeyMismatch},
		{"empty kid", []Key{good, noID}, ErrMalformedKey},
		{"unknown alg", []Key{good, {ID: "x", Alg: "HS512", Private: make([]byte, 64)}}, ErrUnsupportedAlg},
	}
	iss := mustIssuer(t, testConfig(ES256), []Key{good}, fixedClock(t0))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := iss.SetKeys(tc.keys); !errors.Is(err, tc.want) {
				t.Fatalf("SetKeys err = %v, want %v", err, tc.want)
			}
			if kid := decodeSegment(t, mustIssue(t, iss), 0)["kid"]; kid != good.ID {
				t.Errorf("after a failed SetKeys the signing kid is %v, want %q", kid, good.ID)
			}
			if _, err := iss.Verify(mustIssue(t, iss)); err != nil {
				t.Errorf("issuer broken after a failed SetKeys: %v", err)
			}
		})
	}
	if _, err := NewIssuer(testConfig(ES256), []Key{ed}, nil, nil); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("NewIssuer without an ES256 key: err = %v, want ErrNoSigningKey", err)
	}
}

func TestNewIssuerRejectsConfig(t *testing.T) {
	key := mustKey(t, ES256, t0)
	cases := []struct {
		name   string
		modify func(*Config)
		want   error
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, ErrConfig},
		{"no audience", func(c *Config) { c.Audience = "" }, ErrConfig},
		{"zero ttl", func(c *Config) { c.AccessTTL = 0 }, ErrConfig},
		{"alg none", func(c *Config) { c.Alg = "none" }, ErrUnsupportedAlg},
		{"alg HS512", func(c *Config) { c.Alg = "HS512" }, ErrUnsupportedAlg},
		{"alg lower case", func(c *Config) { c.Alg = "es256" }, ErrUnsupportedAlg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(ES256)
			tc.modify(&cfg)
			if _, err := NewIssuer(cfg, []Key{key}, nil, nil); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCraftedTokenControl shows the crafting helper makes acceptable tokens,
// so each rejection below is down to the one thing that case changes.
func TestCraftedTokenControl(t *testing.T) {
	key := mustKey(t, ES256, t0)
	iss := mustIssuer(t, testConfig(ES256), []Key{key}, fixedClock(t0))
	tok := craft(t, jwt.SigningMethodES256, key.Private, map[string]any{"kid": key.ID}, validMapClaims())
	if _, err := iss.Verify(tok); err != nil {
		t.Fatalf("crafted control token rejected: %v", err)
	}
	mediaType := craft(t, jwt.SigningMethodES256, key.Private,
		map[string]any{"kid": key.ID, "typ": "application/AT+JWT"}, validMapClaims())
	if _, err := iss.Verify(mediaType); err != nil {
		t.Errorf("typ in media type form rejected: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	retired := t0
	ecKey := mustKey(t, ES256, t0)
	edKey := mustKey(t, EdDSA, t0.Add(-time.Hour))
	edKey.RetiredAt = &retired
	rsaKey := mustKey(t, RS256, t0.Add(-time.Hour))
	rsaKey.RetiredAt = &retired
	hsKey := mustKey(t, HS256, t0.Add(-time.Hour))
	hsKey.RetiredAt = &retired
	ecIssuer := mustIssuer(t, testConfig(ES256), []Key{ecKey, edKey, rsaKey, hsKey}, fixedClock(t0))

	rsIssuerKey := mustKey(t, RS256, t0)
	rsIssuer := mustIssuer(t, testConfig(RS256), []Key{rsIssuerKey}, fixedClock(t0))

	ecPublic := ecKey.Private.(*ecdsa.PrivateKey).Public().(*ecdsa.PublicKey)
	ecPoint, err := ecPublic.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := publicPEM(t, ecPublic)
	rsaPEM := publicPEM(t, rsIssuerKey.Private.(*rsa.PrivateKey).Public())

	foreign := mustKey(t, ES256, t0)
	foreign.ID = ecKey.ID

	with := func(changes jwt.MapClaims) jwt.MapClaims {
		c := validMapClaims()
		for name, v := range changes {
			if v == nil {
				delete(c, name)
				continue
			}
			c[name] = v
		}
		return c
	}
	ecSigned := func(header map[string]any, claims jwt.MapClaims) string {
		h := map[string]any{"kid": ecKey.ID}
		for name, v := range header {
			h[name] = v
		}
		return craft(t, jwt.SigningMethodES256, ecKey.Private, h, claims)
	}
	expired := t0.Add(-ClockLeeway - time.Second).Unix()
	genuine := mustIssue(t, ecIssuer)
	parts := strings.Split(genuine, ".")

	cases := []struct {
		name   string
		issuer *Issuer
		token  string
		want   error // ErrInvalid or ErrExpired
		cause  error // the specific reason, where one can be named
	}{
		{name: "alg none", token: craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			map[string]any{"kid": ecKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "alg none, hand made", token: rawToken(t, `{"alg":"none","typ":"at+jwt","kid":"`+ecKey.ID+`"}`,
			validMapClaims(), ""), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the EC public point", token: craft(t, jwt.SigningMethodHS256, ecPoint,
			map[string]any{"kid": ecKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the EC public PEM", token: craft(t, jwt.SigningMethodHS256, ecPEM,
			map[string]any{"kid": ecKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the RSA public PEM", issuer: rsIssuer, token: craft(t, jwt.SigningMethodHS256, rsaPEM,
			map[string]any{"kid": rsIssuerKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with a genuine retired HMAC key, alg not configured", token: craft(t, jwt.SigningMethodHS256,
			hsKey.Private, map[string]any{"kid": hsKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "EdDSA with a genuine retired key, alg not configured", token: craft(t, jwt.SigningMethodEdDSA,
			edKey.Private, map[string]any{"kid": edKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 with a genuine retired key, alg not configured", token: craft(t, jwt.SigningMethodRS256,
			rsaKey.Private, map[string]any{"kid": rsaKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "header alg differs from the kid's key alg", token: ecSigned(map[string]any{"kid": edKey.ID}, validMapClaims()),
			want: ErrInvalid, cause: errAlgMismatch},
		{name: "foreign key with the same kid", token: craft(t, jwt.SigningMethodES256, foreign.Private,
			map[string]any{"kid": ecKey.ID}, validMapClaims()), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload", token: parts[0] + "." + encodeClaims(t, with(jwt.MapClaims{"sub": "admin"})) + "." + parts[2],
			want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "tampered signature", token: parts[0] + "." + parts[1] + "." + flipFirst(parts[2]),
			want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "signature dropped", token: parts[0] + "." + parts[1] + ".", want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "expired", token: ecSigned(nil, with(jwt.MapClaims{"exp": expired})), want: ErrExpired, cause: jwt.ErrTokenExpired},
		{name: "expired and wrong aud", token: ecSigned(nil, with(jwt.MapClaims{"exp": expired, "aud": "other"})),
			want: ErrInvalid, cause: jwt.ErrTokenInvalidAudience},
		{name: "expired and forged", token: craft(t, jwt.SigningMethodES256, foreign.Private,
			map[string]any{"kid": ecKey.ID}, with(jwt.MapClaims{"exp": expired})), want: ErrInvalid, cause: jwt.ErrTokenSignatureInvalid},
		{name: "wrong iss", token: ecSigned(nil, with(jwt.MapClaims{"iss": "https://evil.test"})),
			want: ErrInvalid, cause: jwt.ErrTokenInvalidIssuer},
		{name: "no iss", token: ecSigned(nil, with(jwt.MapClaims{"iss": nil})), want: ErrInvalid, cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong aud", token: ecSigned(nil, with(jwt.MapClaims{"aud": []string{"other-api"}})),
			want: ErrInvalid, cause: jwt.ErrTokenInvalidAudience},
		{name: "no aud", token: ecSigned(nil, with(jwt.MapClaims{"aud": nil})), want: ErrInvalid, cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong typ", token: ecSigned(map[string]any{"typ": "JWT"}, validMapClaims()), want: ErrInvalid, cause: errWrongType},
		{name: "no typ", token: ecSigned(map[string]any{"typ": nil}, validMapClaims()), want: ErrInvalid, cause: errWrongType},
		{name: "typ not a string", token: ecSigned(map[string]any{"typ": 7}, validMapClaims()), want: ErrInvalid, cause: errWrongType},
		{name: "missing kid", token: ecSigned(map[string]any{"kid": nil}, validMapClaims()), want: ErrInvalid, cause: errMissingKID},
		{name: "unknown kid", token: ecSigned(map[string]any{"kid": "no-such-key"}, validMapClaims()),
			want: ErrInvalid, cause: ErrUnknownKey},
		{name: "no exp", token: ecSigned(nil, with(jwt.MapClaims{"exp": nil})), want: ErrInvalid, cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "exp not a number", token: ecSigned(nil, with(jwt.MapClaims{"exp": "tomorrow"})), want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "no sub", token: ecSigned(nil, with(jwt.MapClaims{"sub": nil})), want: ErrInvalid, cause: errMissingClaim},
		{name: "no sid", token: ecSigned(nil, with(jwt.MapClaims{"sid": nil})), want: ErrInvalid, cause: errMissingClaim},
		{name: "issued in the future", token: ecSigned(nil, with(jwt.MapClaims{
			"iat": t0.Add(time.Hour).Unix(), "exp": t0.Add(2 * time.Hour).Unix()})), want: ErrInvalid, cause: jwt.ErrTokenUsedBeforeIssued},
		{name: "not yet valid", token: ecSigned(nil, with(jwt.MapClaims{"nbf": t0.Add(time.Hour).Unix()})),
			want: ErrInvalid, cause: jwt.ErrTokenNotValidYet},
		{name: "empty", token: "", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "garbage", token: "garbage", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "three dots", token: "...", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "a.b.c", token: "a.b.c", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "four segments", token: genuine + ".x", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "refresh token", token: "lrt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2],
			want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "padded base64", token: parts[0] + "=." + parts[1] + "." + parts[2], want: ErrInvalid, cause: jwt.ErrTokenMalformed},
		{name: "oversized", token: genuine + strings.Repeat("A", maxTokenBytes), want: ErrInvalid, cause: errTokenTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iss := tc.issuer
			if iss == nil {
				iss = ecIssuer
			}
			claims, err := iss.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			other := ErrExpired
			if tc.want == ErrExpired {
				other = ErrInvalid
			}
			if errors.Is(err, other) {
				t.Errorf("err = %v is both ErrInvalid and ErrExpired", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
			}
			if malformed := errors.Is(tc.cause, jwt.ErrTokenMalformed); errors.Is(err, ErrMalformed) != malformed {
				t.Errorf("err = %v: wraps ErrMalformed = %v, want %v", err, !malformed, malformed)
			}
			if diff := cmp.Diff(Claims{}, claims); diff != "" {
				t.Errorf("rejected token still yields claims:\n%s", diff)
			}
		})
	}
	if _, err := ecIssuer.Verify(genuine); err != nil {
		t.Errorf("the genuine token the cases start from is rejected: %v", err)
	}
}

func TestVerifyExpiryBoundary(t *testing.T) {
	key := mustKey(t, EdDSA, t0)
	now := t0
	iss := mustIssuer(t, testConfig(EdDSA), []Key{key}, func() time.Time { return now })
	tok := mustIssue(t, iss)
	exp := t0.Add(testTTL)

	now = exp.Add(ClockLeeway - time.Nanosecond)
	if _, err := iss.Verify(tok); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
	now = exp.Add(ClockLeeway)
	if _, err := iss.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("at exp + leeway: err = %v, want ErrExpired", err)
	}
	// A token whose iat is just ahead of this host's clock (another instance
	// running slightly fast) is accepted within the leeway.
	now = t0.Add(-ClockLeeway + time.Second)
	if _, err := iss.Verify(tok); err != nil {
		t.Errorf("iat slightly in the future: %v", err)
	}
}

func TestConcurrentKeySwapsKeepVerifying(t *testing.T) {
	retired := t0
	a, b := mustKey(t, ES256, t0.Add(-time.Hour)), mustKey(t, ES256, t0)
	aRetired, bRetired := a, b
	aRetired.RetiredAt, bRetired.RetiredAt = &retired, &retired
	sets := [][]Key{{a, bRetired}, {aRetired, b}}
	iss := mustIssuer(t, testConfig(ES256), sets[0], fixedClock(t0))

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				tok, _, err := iss.Issue(userClaims())
				if err == nil {
					_, err = iss.Verify(tok)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for n := range 200 {
			if err := iss.SetKeys(sets[n%2]); err != nil {
				errs <- err
				return
			}
			_ = iss.JWKS()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func publicPEM(t *testing.T, public any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func encodeClaims(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func rawToken(t *testing.T, header string, claims jwt.MapClaims, signature string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + encodeClaims(t, claims) + "." + signature
}

// flipFirst changes the first character of a base64url segment to another
// valid one, so the segment still decodes but to different bytes.
func flipFirst(seg string) string {
	if seg[0] == 'A' {
		return "B" + seg[1:]
	}
	return "A" + seg[1:]
}
