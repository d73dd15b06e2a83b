package token

import (
	"bytes"
	"testing"
)

func BenchmarkIssue(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			iss := mustIssuer(b, testConfig(alg), []Key{mustKey(b, alg, t0)}, fixedClock(t0))
			claims := userClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := iss.Issue(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures the full check (signature, header, claims) per algorithm, and the
// cached path a client presenting the same token again takes.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			iss := mustIssuer(b, testConfig(alg), []Key{mustKey(b, alg, t0)}, fixedClock(t0))
			tok := mustIssue(b, iss)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.verifyUncached(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cached", func(b *testing.B) {
		iss := mustIssuer(b, testConfig(ES256), []Key{mustKey(b, ES256, t0)}, fixedClock(t0))
		tok := mustIssue(b, iss)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := iss.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSuccessor(b *testing.B) {
	secret := bytes.Repeat([]byte{9}, 32)
	parent, err := NewRefreshToken(seeded(1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		parent = Successor(secret, parent)
	}
}
