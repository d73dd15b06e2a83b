package password

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// testParams keeps each hash around a millisecond so the suite stays fast.
var testParams = Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Known-answer vectors from the argon2 reference implementation (src/test.c): password
// "password", salt "somesalt".
const (
	referenceM256P1 = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	referenceM256P2 = "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"
)

func newTestHasher(t *testing.T, capacity int, queueTimeout time.Duration) *Hasher {
	t.Helper()
	return NewHasher(testParams, capacity, queueTimeout, nil)
}

// holdSlot occupies one slot as a running hash would, until the returned release is called.
func holdSlot(t *testing.T, h *Hasher) (release func()) {
	t.Helper()
	if err := h.acquire(context.Background()); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	var once sync.Once
	release = func() { once.Do(h.release) }
	t.Cleanup(release)
	return release
}

type verdict struct {
	OK, NeedsRehash bool
}

func verify(t *testing.T, h *Hasher, encoded, plain string) verdict {
	t.Helper()
	ok, needsRehash, err := h.Verify(context.Background(), encoded, plain)
	if err != nil {
		t.Fatalf("Verify(%q): %v", encoded, err)
	}
	return verdict{ok, needsRehash}
}

func TestOWASP(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if diff := cmp.Diff(want, OWASP()); diff != "" {
		t.Errorf("OWASP() (-want +got):\n%s", diff)
	}
	if err := OWASP().Validate(); err != nil {
		t.Errorf("OWASP().Validate() = %v", err)
	}
}

func TestHashMatchesReferenceImplementation(t *testing.T) {
	params := Params{Memory: 256, Iterations: 2, Parallelism: 1, SaltLen: 8, KeyLen: 32}
	h := NewHasher(params, 1, time.Second, strings.NewReader("somesalt"))

	got, err := h.Hash(context.Background(), "password")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(referenceM256P1, got); diff != "" {
		t.Errorf("Hash (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(verdict{OK: true}, verify(t, h, referenceM256P1, "password")); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
}

func TestVerifyReferenceVectorWithOtherParallelism(t *testing.T) {
	h := newTestHasher(t, 1, time.Second)
	if diff := cmp.Diff(verdict{OK: true, NeedsRehash: true}, verify(t, h, referenceM256P2, "password")); diff != "" {
		t.Errorf("right password (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(verdict{}, verify(t, h, referenceM256P2, "Password")); diff != "" {
		t.Errorf("wrong password (-want +got):\n%s", diff)
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := newTestHasher(t, 2, time.Second)
	ctx := context.Background()

	first, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("Hash = %q, want argon2id PHC string with the hasher's params", first)
	}
	second, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Errorf("two hashes of one password are equal (%q): salt is not random", first)
	}

	for _, tc := range []struct {
		name  string
		plain string
		want  verdict
	}{
		{"right password", "correct horse battery staple", verdict{OK: true}},
		{"wrong password", "correct horse battery stapler", verdict{}},
		{"empty password", "", verdict{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, verify(t, h, first, tc.plain)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHashFailsWhenRandomnessFails(t *testing.T) {
	errNoEntropy := errors.New("no entropy")
	h := NewHasher(testParams, 1, time.Second, iotest.ErrReader(errNoEntropy))

	_, err := h.Hash(context.Background(), "pw")
	if !errors.Is(err, errNoEntropy) {
		t.Fatalf("Hash err = %v, want %v", err, errNoEntropy)
	}
	if got := h.MaxInFlightSeen(); got != 0 {
		t.Errorf("MaxInFlightSeen = %d, want 0: a failed salt read must not take a slot", got)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newTestHasher(t, 1, time.Second)
	generated, err := bcrypt.GenerateFromPassword([]byte("imported secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(generated), "$2a$") {
		t.Fatalf("bcrypt generated %q, want $2a$ prefix", generated)
	}

	// Other implementations write $2b$ and $2y$ for the same algorithm.
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		encoded := prefix + string(generated[4:])
		t.Run(prefix, func(t *testing.T) {
			if diff := cmp.Diff(verdict{OK: true, NeedsRehash: true}, verify(t, h, encoded, "imported secret")); diff != "" {
				t.Errorf("right password (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(verdict{}, verify(t, h, encoded, "imported secreT")); diff != "" {
				t.Errorf("wrong password (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyArgon2WithOtherParams(t *testing.T) {
	h := newTestHasher(t, 1, time.Second)
	for _, tc := range []struct {
		name   string
		params Params
	}{
		{"memory", Params{Memory: 2048, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
		{"iterations", Params{Memory: 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
		{"parallelism", Params{Memory: 1024, Iterations: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32}},
		{"salt length", Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 32, KeyLen: 32}},
		{"key length", Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := NewHasher(tc.params, 1, time.Second, nil).Hash(context.Background(), "pw")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(verdict{OK: true, NeedsRehash: true}, verify(t, h, old, "pw")); diff != "" {
				t.Errorf("right password (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(verdict{}, verify(t, h, old, "pW")); diff != "" {
				t.Errorf("wrong password (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	// Every slot is held and nothing may queue: a malformed hash must be rejected before it asks
	// for a slot, so the error is ErrMalformedHash and never ErrOverloaded.
	h := newTestHasher(t, 1, 0)
	holdSlot(t, h)

	generated, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	validBcrypt := string(generated)
	argon := func(old, new string) string { return strings.Replace(referenceM256P1, old, new, 1) }
	bcryptWith := func(old, new string) string { return strings.Replace(validBcrypt, old, new, 1) }

	for _, tc := range []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"argon2i", argon("$argon2id$", "$argon2i$")},
		{"argon2d", argon("$argon2id$", "$argon2d$")},
		{"upper case scheme", argon("$argon2id$", "$ARGON2ID$")},
		{"leading space", " " + referenceM256P1},
		{"trailing newline", referenceM256P1 + "\n"},
		{"line break inside salt", argon("c29tZXNh", "c29tZXNh\r\n")},
		{"trailing dollar", referenceM256P1 + "$"},
		{"no version", argon("$v=19", "")},
		{"version 16", argon("v=19", "v=16")},
		{"version leading zero", argon("v=19", "v=019")},
		{"params out of order", argon("m=256,t=2,p=1", "t=2,m=256,p=1")},
		{"extra param", argon("p=1", "p=1,keyid=1")},
		{"missing param", argon("m=256,t=2,p=1", "m=256,t=2")},
		{"memory above 1 GiB", argon("m=256", "m=1048577")},
		{"memory overflows uint32", argon("m=256", "m=4294967296")},
		{"memory below 8 per lane", argon("m=256,t=2,p=1", "m=15,t=2,p=2")},
		{"memory leading zero", argon("m=256", "m=0256")},
		{"memory plus sign", argon("m=256", "m=+256")},
		{"memory empty", argon("m=256", "m=")},
		{"iterations zero", argon("t=2", "t=0")},
		{"iterations above 100", argon("t=2", "t=101")},
		{"parallelism zero", argon("p=1", "p=0")},
		{"parallelism above 255", argon("p=1", "p=256")},
		{"salt padded", argon("c29tZXNhbHQ", "c29tZXNhbHQ=")},
		{"salt not base64", argon("c29tZXNhbHQ", "c29tZXNhbH!")},
		{"salt non-canonical trailing bits", argon("c29tZXNhbHQ", "c29tZXNhbHR")},
		{"salt shorter than 8 bytes", argon("c29tZXNhbHQ", "c29tZQ")},
		{"salt empty", argon("c29tZXNhbHQ", "")},
		{"key shorter than 16 bytes", argon("nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "nf65EOgLrQMR/uI")},
		{"key longer than 128 bytes", argon("nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", strings.Repeat("A", 176))},
		{"key empty", argon("nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "")},
		{"bcrypt minor x", bcryptWith("$2a$", "$2x$")},
		{"bcrypt no minor", "$2$" + validBcrypt[4:]},
		{"bcrypt cost below 4", bcryptWith("$2a$04$", "$2a$03$")},
		{"bcrypt cost above 16", bcryptWith("$2a$04$", "$2a$17$")},
		{"bcrypt cost 31", bcryptWith("$2a$04$", "$2a$31$")},
		{"bcrypt cost not digits", bcryptWith("$2a$04$", "$2a$+4$")},
		{"bcrypt truncated", validBcrypt[:59]},
		{"bcrypt trailing byte", validBcrypt + "x"},
		{"bcrypt bad character", validBcrypt[:59] + "!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, needsRehash, err := h.Verify(context.Background(), tc.encoded, "password")
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(%q) err = %v, want ErrMalformedHash", tc.encoded, err)
			}
			if ok || needsRehash {
				t.Errorf("Verify(%q) = ok %v, needsRehash %v; want false, false", tc.encoded, ok, needsRehash)
			}
		})
	}
}

func TestConcurrencyStaysWithinCapacity(t *testing.T) {
	h := newTestHasher(t, 2, time.Minute)
	const callers = 100

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			plain := strings.Repeat("x", i+1)
			encoded, err := h.Hash(context.Background(), plain)
			if err != nil {
				errs <- err
				return
			}
			ok, _, err := h.Verify(context.Background(), encoded, plain)
			if err == nil && !ok {
				err = errors.New("own hash did not verify")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if got := h.MaxInFlightSeen(); got < 1 || got > 2 {
		t.Errorf("MaxInFlightSeen = %d, want 1 or 2", got)
	}
	if got := h.InFlight(); got != 0 {
		t.Errorf("InFlight after all calls = %d, want 0", got)
	}
	if got := h.Waiting(); got != 0 {
		t.Errorf("Waiting after all calls = %d, want 0", got)
	}
}

func TestOverloadedWhenNoSlotFreesInTime(t *testing.T) {
	for _, tc := range []struct {
		name         string
		queueTimeout time.Duration
	}{
		{"no queueing", 0},
		{"short queue timeout", 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHasher(t, 1, tc.queueTimeout)
			encoded, err := h.Hash(context.Background(), "pw")
			if err != nil {
				t.Fatal(err)
			}
			release := holdSlot(t, h)

			if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, ErrOverloaded) {
				t.Errorf("Hash err = %v, want ErrOverloaded", err)
			}
			ok, _, err := h.Verify(context.Background(), encoded, "pw")
			if ok || !errors.Is(err, ErrOverloaded) {
				t.Errorf("Verify = %v, %v; want false, ErrOverloaded", ok, err)
			}
			if got := h.InFlight(); got != 1 {
				t.Errorf("InFlight while held = %d, want 1 (the held slot only)", got)
			}

			// The timed-out calls must not have kept or leaked a slot.
			release()
			if got := h.InFlight(); got != 0 {
				t.Errorf("InFlight after release = %d, want 0", got)
			}
			if got := verify(t, h, encoded, "pw"); !got.OK {
				t.Errorf("Verify after release = %+v, want OK", got)
			}
		})
	}
}

func TestContextEndsTheWait(t *testing.T) {
	t.Run("cancelled while waiting", func(t *testing.T) {
		h := newTestHasher(t, 1, time.Hour)
		holdSlot(t, h)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		done := make(chan error)
		go func() {
			_, err := h.Hash(ctx, "pw")
			done <- err
		}()
		waitUntil(t, func() bool { return h.Waiting() == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Hash err = %v, want context.Canceled", err)
		}
		if got := h.Waiting(); got != 0 {
			t.Errorf("Waiting = %d, want 0", got)
		}
	})

	t.Run("deadline before queue timeout", func(t *testing.T) {
		h := newTestHasher(t, 1, time.Hour)
		holdSlot(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hash err = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("already cancelled with a free slot", func(t *testing.T) {
		h := newTestHasher(t, 1, time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash err = %v, want context.Canceled", err)
		}
		if got := h.MaxInFlightSeen(); got != 0 {
			t.Errorf("MaxInFlightSeen = %d, want 0: a gone caller must not cost a hash", got)
		}
	})
}

func TestWaitObserverSeesEveryWait(t *testing.T) {
	const queueTimeout = 5 * time.Millisecond
	h := newTestHasher(t, 1, queueTimeout)
	var waits []time.Duration
	h.WaitObserver = func(waited time.Duration) { waits = append(waits, waited) }

	release := holdSlot(t, h)
	waits = nil // holdSlot's own acquire is not a call under test
	if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash err = %v, want ErrOverloaded", err)
	}
	release()
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}

	if len(waits) != 2 {
		t.Fatalf("observed %d waits (%v), want 2", len(waits), waits)
	}
	if waits[0] < queueTimeout {
		t.Errorf("timed-out wait observed as %v, want at least %v", waits[0], queueTimeout)
	}
	if waits[1] < 0 {
		t.Errorf("wait observed as %v, want non-negative", waits[1])
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newTestHasher(t, 1, time.Second)
	ctx := context.Background()

	if err := h.VerifyDummy(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if got := h.MaxInFlightSeen(); got != 1 {
		t.Fatalf("MaxInFlightSeen after VerifyDummy = %d, want 1: the dummy must do a real, bounded hash", got)
	}

	encoded, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	const runs = 15
	var real, dummy []time.Duration
	for range runs {
		start := time.Now()
		if _, _, err := h.Verify(ctx, encoded, "wrong"); err != nil {
			t.Fatal(err)
		}
		real = append(real, time.Since(start))

		start = time.Now()
		if err := h.VerifyDummy(ctx, "wrong"); err != nil {
			t.Fatal(err)
		}
		dummy = append(dummy, time.Since(start))
	}
	realMedian, dummyMedian := median(real), median(dummy)
	if dummyMedian*3 < realMedian || realMedian*3 < dummyMedian {
		t.Errorf("median Verify %v vs VerifyDummy %v: want within a factor of 3", realMedian, dummyMedian)
	}
}

func TestVerifyDummyGivesUpWhenOverloaded(t *testing.T) {
	h := newTestHasher(t, 1, 0)
	holdSlot(t, h)
	// It must return rather than block on the held slot, and say so: the caller answers 503 exactly as
	// it would for a known account.
	if err := h.VerifyDummy(context.Background(), "pw"); !errors.Is(err, ErrOverloaded) {
		t.Errorf("VerifyDummy while overloaded = %v, want ErrOverloaded", err)
	}
	if got := h.InFlight(); got != 1 {
		t.Errorf("InFlight = %d, want 1 (the held slot only)", got)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		maxConcurrent int
		want          int
	}{
		{0, runtime.GOMAXPROCS(0)},
		{-1, runtime.GOMAXPROCS(0)},
		{3, 3},
	} {
		if got := NewHasher(testParams, tc.maxConcurrent, time.Second, nil).Capacity(); got != tc.want {
			t.Errorf("NewHasher(maxConcurrent=%d).Capacity() = %d, want %d", tc.maxConcurrent, got, tc.want)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	with := func(change func(*Params)) Params {
		p := testParams
		change(&p)
		return p
	}
	for _, tc := range []struct {
		name   string
		params Params
	}{
		{"zero", Params{}},
		{"parallelism zero", with(func(p *Params) { p.Parallelism = 0 })},
		{"memory below 8 per lane", with(func(p *Params) { p.Memory, p.Parallelism = 15, 2 })},
		{"memory above 1 GiB", with(func(p *Params) { p.Memory = 1<<20 + 1 })},
		{"iterations zero", with(func(p *Params) { p.Iterations = 0 })},
		{"iterations above 100", with(func(p *Params) { p.Iterations = 101 })},
		{"salt too short", with(func(p *Params) { p.SaltLen = 7 })},
		{"salt too long", with(func(p *Params) { p.SaltLen = 65 })},
		{"key too short", with(func(p *Params) { p.KeyLen = 15 })},
		{"key too long", with(func(p *Params) { p.KeyLen = 129 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.params.Validate(); !errors.Is(err, ErrInvalidParams) {
				t.Errorf("Validate() = %v, want ErrInvalidParams", err)
			}
			defer func() {
				if recover() == nil {
					t.Error("NewHasher did not panic on invalid params")
				}
			}()
			NewHasher(tc.params, 1, time.Second, nil)
		})
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		runtime.Gosched()
	}
}

func median(ds []time.Duration) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}
