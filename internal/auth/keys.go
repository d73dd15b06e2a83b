package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/latch-auth/latch/internal/seal"
	"github.com/latch-auth/latch/internal/token"
)

// Secrets are the server's keys. The HMAC keys are listed newest first; older versions still verify.
type Secrets struct {
	Code    [][]byte // keys the HMAC of emailed codes and of TOTP recovery codes
	Refresh [][]byte // derives a refresh token's successor from the token
	TOTP    *seal.Box
}

// Secret names in the server_secrets table.
const (
	SecretCode    = "code_hmac"
	SecretRefresh = "refresh"
	SecretTOTP    = "totp_seal"
)

// LoadSecrets uses the configured secrets (nil when not configured), or generates them once and keeps
// them in the database so every instance and every restart agree. generated names the secrets that
// came from the database, for the wiring to warn about.
func LoadSecrets(ctx context.Context, st KeyStore, codeKey, refreshKey []byte) (out Secrets, generated []string, err error) {
	for _, s := range []struct {
		name       string
		configured []byte
		dst        *[][]byte
	}{{SecretCode, codeKey, &out.Code}, {SecretRefresh, refreshKey, &out.Refresh}} {
		if len(s.configured) > 0 {
			*s.dst = [][]byte{s.configured}
			continue
		}
		versions, err := st.Secrets(ctx, s.name, func() ([]byte, error) { return randomBytes(32) })
		if err != nil {
			return out, nil, fmt.Errorf("load secret %s: %w", s.name, err)
		}
		*s.dst = versions
		generated = append(generated, s.name)
	}
	return out, generated, nil
}

// LoadSealKeyring builds the keyring that seals one kind of value at rest: the configured versions
// (current first, then older ones that still open) when there are any; otherwise the versions of the
// secret named name kept in the database, generated once on first start, and generated is true so the
// wiring can warn. Stored versions are numbered from 1, oldest first.
func LoadSealKeyring(ctx context.Context, st KeyStore, name string, configured []seal.Secret) (k *seal.Keyring, generated bool, err error) {
	if len(configured) > 0 {
		k, err = seal.NewKeyring(configured[0], configured[1:], nil)
		return k, false, err
	}
	versions, err := st.Secrets(ctx, name, func() ([]byte, error) { return randomBytes(32) })
	if err != nil {
		return nil, false, fmt.Errorf("load secret %s: %w", name, err)
	}
	if len(versions) == 0 {
		return nil, false, fmt.Errorf("load secret %s: none stored", name)
	}
	secrets := make([]seal.Secret, len(versions))
	for i, v := range versions {
		secrets[i] = seal.Secret{Version: uint32(len(versions) - i), Material: v}
	}
	k, err = seal.NewKeyring(secrets[0], secrets[1:], nil)
	return k, true, err
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// Keys owns the signing keys: it loads them (configured, or from the database where they are generated
// on first start), signs and verifies with them, and reloads them so a `latch keys rotate` run against
// the same database reaches every instance. It is the service's Signer.
type Keys struct {
	st        KeyStore
	issuer    *token.Issuer
	alg       string
	retention time.Duration
	fixed     bool // a configured key: nothing to reload
	now       func() time.Time
	log       *slog.Logger

	mu         sync.Mutex
	lastReload time.Time
}

// LoadKeys builds the issuer. With configured set (PEM, or the raw secret for HS256) that key is used
// and never stored; otherwise an active key of the algorithm is created in the database when none
// exists.
func LoadKeys(ctx context.Context, st KeyStore, cfg token.Config, configured []byte, now func() time.Time, log *slog.Logger) (*Keys, error) {
	k := &Keys{st: st, alg: cfg.Alg, retention: cfg.AccessTTL + 10*time.Minute, now: now, log: log}
	var keys []token.Key
	if len(configured) > 0 {
		sum := sha256.Sum256(configured)
		key, err := token.ParsePrivate(base64.RawURLEncoding.EncodeToString(sum[:9]), cfg.Alg, configured, now())
		if err != nil {
			return nil, err
		}
		keys, k.fixed = []token.Key{key}, true
	} else {
		var err error
		if keys, err = k.fromStore(ctx); err != nil {
			return nil, err
		}
		if !hasActive(keys, cfg.Alg) {
			log.Info("no active signing key in the database; generating one", "alg", cfg.Alg)
			if _, err := k.Rotate(ctx); err != nil {
				return nil, err
			}
			if keys, err = k.fromStore(ctx); err != nil {
				return nil, err
			}
		}
	}
	iss, err := token.NewIssuer(cfg, keys, now, rand.Reader)
	if err != nil {
		return nil, err
	}
	k.issuer = iss
	k.lastReload = now()
	return k, nil
}

func hasActive(keys []token.Key, alg string) bool {
	for _, k := range keys {
		if k.Alg == alg && k.RetiredAt == nil {
			return true
		}
	}
	return false
}

func (k *Keys) fromStore(ctx context.Context) ([]token.Key, error) {
	rows, err := k.st.SigningKeys(ctx, k.now().Add(-k.retention))
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	keys := make([]token.Key, 0, len(rows))
	for _, r := range rows {
		key, err := token.ParsePrivate(r.ID, r.Alg, r.PrivateKey, r.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
		}
		key.RetiredAt = r.RetiredAt
		keys = append(keys, key)
	}
	return keys, nil
}

// Issue signs an access token with the current key.
func (k *Keys) Issue(c token.Claims) (string, time.Time, error) { return k.issuer.Issue(c) }

// Verify checks an access token. A kid this instance has not seen may come from a key another instance
// just made, so the keys are reloaded once before the token is refused.
func (k *Keys) Verify(raw string) (token.Claims, error) {
	c, err := k.issuer.Verify(raw)
	if errors.Is(err, token.ErrUnknownKey) && k.reloadForUnknownKid() {
		c, err = k.issuer.Verify(raw)
	}
	return c, err
}

// JWKS is the public key set, current and recently retired keys.
func (k *Keys) JWKS() []byte { return k.issuer.JWKS() }

// ErrFixedKey means the signing key is configured; rotate it by replacing the configured key.
var ErrFixedKey = errors.New("auth: the signing key is configured, not stored; rotate it by replacing the configured key")

// Rotate creates a new active key of the configured algorithm and retires the previous ones, which
// stay published (and keep verifying) until every token they signed has expired.
func (k *Keys) Rotate(ctx context.Context) (token.Key, error) {
	if k.fixed {
		return token.Key{}, ErrFixedKey
	}
	key, err := token.GenerateKey(k.alg, rand.Reader, k.now())
	if err != nil {
		return key, err
	}
	pem, err := token.MarshalPrivate(key)
	if err != nil {
		return key, err
	}
	if err := k.st.AddSigningKey(ctx, StoredKey{ID: key.ID, Alg: key.Alg, PrivateKey: pem, CreatedAt: key.CreatedAt}, true); err != nil {
		return key, fmt.Errorf("store signing key: %w", err)
	}
	if k.issuer != nil {
		return key, k.Reload(ctx)
	}
	return key, nil
}

// Reload reads the keys again from the database.
func (k *Keys) Reload(ctx context.Context) error {
	if k.fixed {
		return nil
	}
	keys, err := k.fromStore(ctx)
	if err != nil {
		return err
	}
	if err := k.issuer.SetKeys(keys); err != nil {
		return err
	}
	k.mu.Lock()
	k.lastReload = k.now()
	k.mu.Unlock()
	return nil
}

// reloadForUnknownKid reloads when a token names a kid this instance has not seen, at most once every
// few seconds so garbage tokens cannot turn into a query storm.
func (k *Keys) reloadForUnknownKid() bool {
	if k.fixed {
		return false
	}
	k.mu.Lock()
	due := k.now().Sub(k.lastReload) > 5*time.Second
	if due {
		k.lastReload = k.now()
	}
	k.mu.Unlock()
	if !due {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if err := k.Reload(ctx); err != nil {
		k.log.Error("reload signing keys", "err", err)
		return false
	}
	return true
}

// reloadTimeout bounds a reload: a database that does not answer must not hold the verification
// that asked for it, nor the reloader, any longer than a request would wait.
const reloadTimeout = 5 * time.Second

// Run reloads the keys every interval until ctx ends, so retired keys drop out of the JWKS and
// rotations made elsewhere take effect for signing.
func (k *Keys) Run(ctx context.Context, every time.Duration) {
	if k.fixed {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reloadCtx, cancel := context.WithTimeout(ctx, reloadTimeout)
			if err := k.Reload(reloadCtx); err != nil && ctx.Err() == nil {
				k.log.Error("reload signing keys", "err", err)
			}
			cancel()
		}
	}
}
