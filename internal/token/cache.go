package token

import "sync"

// verifiedCache remembers tokens whose signature and claims already verified, so a client that
// presents the same access token on every request costs one map lookup instead of an ECDSA or RSA
// verification each time. It belongs to one key set: replacing the keys starts an empty cache, so a
// key dropped from the set cannot keep vouching for its tokens. Expiry is still checked on every hit.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]Claims
	max int
}

const verifiedCacheSize = 8192

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[string]Claims, max), max: max}
}

func (c *verifiedCache) get(token string) (Claims, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cl, ok := c.m[token]
	return cl, ok
}

func (c *verifiedCache) put(token string, cl Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Evict an arbitrary entry: map iteration order is random, which is good enough and O(1).
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[token] = cl
}
