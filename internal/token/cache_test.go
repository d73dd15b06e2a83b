package token

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerifiedCacheKeepsExpiryAndKeySet(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	key := mustKey(t, ES256, start)
	iss := mustIssuer(t, testConfig(ES256), []Key{key}, clock)
	tok := mustIssue(t, iss)

	first, err := iss.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := iss.keys.Load().verified.get(tok); !ok {
		t.Fatal("a verified token was not cached")
	}
	second, err := iss.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached claims differ (-first +second):\n%s", diff)
	}

	// A cache hit must still honour exp.
	mu.Lock()
	now = start.Add(testTTL + ClockLeeway + time.Second)
	mu.Unlock()
	if _, err := iss.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("expired cached token: got %v, want ErrExpired", err)
	}

	// Replacing the key set drops what the old set vouched for.
	mu.Lock()
	now = start
	mu.Unlock()
	if err := iss.SetKeys([]Key{mustKey(t, ES256, start.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(tok); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token of a removed key after SetKeys: got %v, want ErrUnknownKey", err)
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	c := newVerifiedCache(3)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, Claims{Subject: k})
	}
	if got := len(c.m); got != 3 {
		t.Errorf("cache holds %d entries, want 3", got)
	}
	if cl, ok := c.get("e"); !ok || cl.Subject != "e" {
		t.Errorf("the newest entry is missing: %+v, %v", cl, ok)
	}
}
