package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// AdminKeyPrefix marks admin API keys so secret scanners can spot leaked ones.
const AdminKeyPrefix = "lak_"

const (
	adminKeyEntropyBytes = 32 // 256 bits
	adminKeyLen          = len(AdminKeyPrefix) + (adminKeyEntropyBytes*8+5)/6
	maxAdminKeyName      = 100
	// adminKeyTouchEvery bounds how often a key's last use is written: a busy automation must not
	// turn every admin request into a write.
	adminKeyTouchEvery = time.Minute
)

// AdminKey is a key of the admin API as stored: its secret is never kept, only a hash of it.
type AdminKey struct {
	ID   string
	Name string
	// TenantID scopes the key to one tenant; "" is a key for every tenant.
	TenantID   string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Admin is who performs an operator action and what it may reach: an admin key or the command line,
// over one tenant (Scope) or every tenant (Scope ""). Anything of a tenant outside the scope does not
// exist for it: it answers not found, never forbidden, so a key cannot learn of other tenants.
type Admin struct {
	Actor Actor
	Scope string
}

// Admin is the caller a key authenticates.
func (k AdminKey) Admin() Admin {
	return Admin{Actor: Actor{Type: ActorAdminKey, ID: k.ID, Name: k.Name}, Scope: k.TenantID}
}

// CommandLine is the caller of a `latch` command, over every tenant.
func CommandLine(command string) Admin {
	return Admin{Actor: Actor{Type: ActorCLI, Name: command}}
}

// Within narrows the caller to one tenant (a request under /t/{tenant}): a caller scoped to another
// tenant sees nothing there.
func (a Admin) Within(tenantID string) (Admin, error) {
	if tenantID == "" || a.Scope == tenantID {
		return a, nil
	}
	if a.Scope != "" {
		return a, errNoTenant()
	}
	a.Scope = tenantID
	return a, nil
}

// sees reports whether a tenant is inside the caller's scope.
func (a Admin) sees(tenantID string) bool { return a.Scope == "" || a.Scope == tenantID }

// event is the record of a change the caller made.
func (a Admin) event(kind, tenantID, userID string) Event {
	return Event{Kind: kind, TenantID: tenantID, UserID: userID, Actor: a.Actor}
}

func errNoTenant() error { return newError(CodeNotFound, "No such tenant.") }

func errNoUser() error { return newError(CodeNotFound, "No such user.") }

func errForbidden(detail string) error { return newError(CodeForbidden, detail) }

func errAdminKey(detail string) error {
	return newError(CodeAdminKeyRequired, detail)
}

// newAdminKey draws a key: "lak_" and 32 random bytes in unpadded base64url.
func newAdminKey(r io.Reader) (string, error) {
	raw := make([]byte, adminKeyEntropyBytes)
	if _, err := io.ReadFull(r, raw); err != nil {
		return "", err
	}
	return AdminKeyPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// looksLikeAdminKey is the shape check run before hashing and looking a presented key up.
func looksLikeAdminKey(key string) bool {
	if len(key) != adminKeyLen || !strings.HasPrefix(key, AdminKeyPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(key[len(AdminKeyPrefix):])
	return err == nil
}

// hashAdminKey is what the store keeps instead of the key: with 256 random bits a plain SHA-256 is
// as hard to reverse as any slow hash, and it lets a lookup be one index probe.
func hashAdminKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// CreateAdminKey makes a key for every tenant (tenantID "") or for one, and returns it with its
// secret, which is shown this once: only its hash is stored.
func (s *Service) CreateAdminKey(ctx context.Context, name, tenantID string, by Admin) (AdminKey, string, error) {
	var v Validation
	name = strings.TrimSpace(name)
	if name == "" {
		v.Add("name", "is required")
	} else if utf8.RuneCountInString(name) > maxAdminKeyName || !printable(name) {
		v.Add("name", "must be at most 100 printable characters")
	}
	if tenantID != "" && !ValidTenantID(tenantID) {
		v.Add("tenantId", "is not a known tenant")
	}
	if err := v.Err(); err != nil {
		return AdminKey{}, "", err
	}
	secret, err := newAdminKey(s.Random)
	if err != nil {
		return AdminKey{}, "", internal("draw admin key", err)
	}
	k := AdminKey{ID: uuid.NewString(), Name: name, TenantID: tenantID}
	ev := by.event("admin_key_created", tenantID, "")
	ev.Detail = "admin key " + k.ID + " (" + name + ")"
	err = s.store.CreateAdminKey(ctx, &k, hashAdminKey(secret), ev)
	if errors.Is(err, ErrNotFound) {
		v.Add("tenantId", "is not a known tenant")
		return AdminKey{}, "", v.Err()
	}
	if err != nil {
		return AdminKey{}, "", internal("create admin key", err)
	}
	return k, secret, nil
}

// AdminKeys lists every key, revoked ones included, oldest first.
func (s *Service) AdminKeys(ctx context.Context) ([]AdminKey, error) {
	keys, err := s.store.ListAdminKeys(ctx)
	if err != nil {
		return nil, internal("list admin keys", err)
	}
	return keys, nil
}

// RevokeAdminKey revokes a key at once: the next request made with it is refused.
func (s *Service) RevokeAdminKey(ctx context.Context, id string, by Admin) error {
	ev := by.event("admin_key_revoked", by.Scope, "")
	ev.Detail = "admin key " + id
	err := s.store.RevokeAdminKey(ctx, id, ev)
	if errors.Is(err, ErrNotFound) {
		return newError(CodeNotFound, "No live admin key has that id.")
	}
	if err != nil {
		return internal("revoke admin key", err)
	}
	return nil
}

// AuthenticateAdmin checks a presented admin key. Every refusal is the same admin_key_required
// answer whatever the reason (malformed, unknown, revoked), with a detail that helps an operator.
func (s *Service) AuthenticateAdmin(ctx context.Context, key string) (AdminKey, error) {
	if key == "" {
		return AdminKey{}, errAdminKey("An admin key is required (Authorization: Bearer lak_...).")
	}
	if !looksLikeAdminKey(key) {
		return AdminKey{}, errAdminKey("That is not an admin key (they start with lak_).")
	}
	k, err := s.store.AdminKeyByHash(ctx, hashAdminKey(key))
	switch {
	case errors.Is(err, ErrNotFound):
		return AdminKey{}, errAdminKey("The admin key is unknown.")
	case err != nil:
		return AdminKey{}, internal("find admin key", err)
	case k.RevokedAt != nil:
		return AdminKey{}, errAdminKey("The admin key was revoked.")
	}
	if err := s.store.TouchAdminKey(ctx, k.ID, adminKeyTouchEvery); err != nil {
		s.log.WarnContext(ctx, "record admin key use", "err", err)
	}
	return k, nil
}
