// Package password hashes passwords with argon2id, verifies argon2id and imported bcrypt hashes, and
// bounds how many of those memory-hungry computations run at once so a login storm queues (or is
// shed with ErrOverloaded) instead of growing the heap by 19 MiB per request.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

var (
	// ErrOverloaded means no hashing slot freed up within the queue timeout; the caller should answer
	// 503 with Retry-After rather than pile more requests onto the queue.
	ErrOverloaded = errors.New("password: too many hashes in flight")
	// ErrMalformedHash means a stored hash is not one this package accepts (unknown scheme, bad
	// encoding, or parameters outside the bounds we are willing to spend memory and CPU on).
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrInvalidParams means Params that would produce hashes this package refuses to verify.
	ErrInvalidParams = errors.New("password: invalid argon2id parameters")
)

// Bounds on what a stored hash may ask of us. A row in the users table is not trusted: without
// these a crafted hash could make one Verify allocate gigabytes or loop for hours.
const (
	maxMemoryKiB   = 1 << 20 // 1 GiB
	maxIterations  = 100
	maxParallelism = 255
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 128
	// Cost 16 already takes seconds per check; anything above is an attack or an unusable import.
	maxBcryptCost = 16
)

// Params are argon2id cost parameters.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32 // bytes
	KeyLen      uint32 // bytes
}

// OWASP returns the OWASP Password Storage Cheat Sheet minimum for argon2id.
func OWASP() Params {
	return Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports whether p lies within the bounds Verify accepts, so every hash we write can be
// read back. Config loading should call it; NewHasher panics on invalid params.
func (p Params) Validate() error {
	switch {
	case p.Parallelism < 1:
		return fmt.Errorf("%w: parallelism %d < 1", ErrInvalidParams, p.Parallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("%w: memory %d KiB outside [8*parallelism, %d]", ErrInvalidParams, p.Memory, maxMemoryKiB)
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("%w: iterations %d outside [1, %d]", ErrInvalidParams, p.Iterations, maxIterations)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length %d outside [%d, %d]", ErrInvalidParams, p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: key length %d outside [%d, %d]", ErrInvalidParams, p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hasher hashes and verifies passwords with at most Capacity computations in flight.
type Hasher struct {
	params       Params
	slots        chan struct{}
	queueTimeout time.Duration
	random       io.Reader
	dummy        argon2Hash

	// WaitObserver, when set before first use, receives how long each call waited for a slot,
	// whether it got one or not (for a queue-wait histogram).
	WaitObserver func(waited time.Duration)

	inFlight atomic.Int64
	maxSeen  atomic.Int64
	waiting  atomic.Int64
}

// NewHasher returns a Hasher that writes hashes with p. maxConcurrent <= 0 means
// runtime.GOMAXPROCS(0). queueTimeout bounds the wait for a free slot (the ctx bounds it too);
// queueTimeout <= 0 means do not queue at all: ErrOverloaded at once when every slot is busy.
// random supplies salts; nil means crypto/rand. It panics if p.Validate fails.
func NewHasher(p Params, maxConcurrent int, queueTimeout time.Duration, random io.Reader) *Hasher {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if random == nil {
		random = rand.Reader
	}
	return &Hasher{
		params:       p,
		slots:        make(chan struct{}, maxConcurrent),
		queueTimeout: queueTimeout,
		random:       random,
		// The dummy only has to cost what a real hash of the current params costs; its salt and
		// key never need to match anything, so there is nothing to compute up front.
		dummy: argon2Hash{params: p, salt: make([]byte, p.SaltLen), key: make([]byte, p.KeyLen)},
	}
}

// Hash returns plain hashed with the Hasher's params as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>".
func (h *Hasher) Hash(ctx context.Context, plain string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.random, salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(plain), salt, h.params.Iterations, h.params.Memory, h.params.Parallelism, h.params.KeyLen)
	h.release()
	return argon2Hash{params: h.params, salt: salt, key: key}.String(), nil
}

// Verify reports whether plain matches encoded, an argon2id PHC string (any params within bounds)
// or a bcrypt hash ($2a$, $2b$, $2y$). needsRehash is true when ok and encoded is bcrypt or was
// written with params other than the Hasher's: the caller should store a fresh Hash.
func (h *Hasher) Verify(ctx context.Context, encoded, plain string) (ok bool, needsRehash bool, err error) {
	if isBcrypt(encoded) {
		ok, err = h.verifyBcrypt(ctx, encoded, plain)
		return ok, ok, err
	}
	stored, err := parseArgon2(encoded)
	if err != nil {
		return false, false, err
	}
	ok, err = h.verifyArgon2(ctx, stored, plain)
	return ok, ok && stored.params != h.params, err
}

// VerifyDummy spends what a Verify against a current-params hash spends, then discards the result,
// so a login for an unknown email takes as long as one for a known email. It waits for a slot like
// Verify does; if none frees up it returns ErrOverloaded, as Verify would.
func (h *Hasher) VerifyDummy(ctx context.Context, plain string) error {
	_, err := h.verifyArgon2(ctx, h.dummy, plain)
	return err
}

// InFlight is the number of hash computations running now.
func (h *Hasher) InFlight() int { return int(h.inFlight.Load()) }

// MaxInFlightSeen is the highest InFlight since the Hasher was made.
func (h *Hasher) MaxInFlightSeen() int { return int(h.maxSeen.Load()) }

// Waiting is the number of calls queued for a slot now.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// Capacity is the most computations that may run at once.
func (h *Hasher) Capacity() int { return cap(h.slots) }

func (h *Hasher) verifyArgon2(ctx context.Context, stored argon2Hash, plain string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	p := stored.params
	key := argon2.IDKey([]byte(plain), stored.salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(stored.key)))
	h.release()
	return subtle.ConstantTimeCompare(key, stored.key) == 1, nil
}

func (h *Hasher) verifyBcrypt(ctx context.Context, encoded, plain string) (bool, error) {
	if err := checkBcrypt(encoded); err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	// CompareHashAndPassword compares with crypto/subtle itself.
	err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(plain))
	h.release()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %v", ErrMalformedHash, err)
	}
}

// acquire takes a slot, waiting at most queueTimeout and no longer than ctx allows.
func (h *Hasher) acquire(ctx context.Context) error {
	// A caller that has already gone away should not cost us a hash.
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	err := h.wait(ctx)
	if h.WaitObserver != nil {
		h.WaitObserver(time.Since(start))
	}
	if err != nil {
		return err
	}
	n := h.inFlight.Add(1)
	for {
		seen := h.maxSeen.Load()
		if n <= seen || h.maxSeen.CompareAndSwap(seen, n) {
			break
		}
	}
	return nil
}

func (h *Hasher) wait(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.queueTimeout <= 0 {
		return ErrOverloaded
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	timer := time.NewTimer(h.queueTimeout)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrOverloaded
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() {
	h.inFlight.Add(-1)
	<-h.slots
}
