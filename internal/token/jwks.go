package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// publicJWK describes a verification key for publication; ok is false for
// HS256, whose "public" key is the shared secret.
func publicJWK(kid, alg string, public any) (jwk, bool, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	k := jwk{Kid: kid, Alg: alg, Use: "sig"}
	switch pub := public.(type) {
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y, fixed width as RFC 7518 wants
		if err != nil {
			return jwk{}, false, fmt.Errorf("token: encode EC key %s: %w", kid, err)
		}
		half := (len(point) - 1) / 2
		k.Kty, k.Crv, k.X, k.Y = "EC", "P-256", b64(point[1:1+half]), b64(point[1+half:])
	case ed25519.PublicKey:
		k.Kty, k.Crv, k.X = "OKP", "Ed25519", b64(pub)
	case *rsa.PublicKey:
		k.Kty, k.N, k.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	default:
		return jwk{}, false, nil
	}
	return k, true, nil
}

func marshalJWKS(keys []jwk) ([]byte, error) {
	if keys == nil {
		keys = []jwk{} // "keys": [] rather than null
	}
	return json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{keys})
}
