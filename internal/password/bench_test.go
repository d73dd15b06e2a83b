package password

import (
	"context"
	"testing"
	"time"
)

func BenchmarkHash(b *testing.B) {
	h := NewHasher(OWASP(), 0, time.Minute, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(OWASP(), 0, time.Minute, nil)
	encoded, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(context.Background(), encoded, "correct horse battery staple"); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
