package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latch-auth/latch/internal/auth"
)

// signingKeyRow is a stored JWT signing key (PKCS#8 PEM, or raw bytes for HS256), sealed when the
// store has a keyring.
type signingKeyRow struct {
	ID         string
	Alg        string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

// ErrSealedElsewhere means values at rest were sealed under a key-encryption key this store does not
// hold: the instance was started with another (or no) secrets.encryption_key than the database's.
var ErrSealedElsewhere = errors.New("store: the database's keys and secrets are sealed under another key-encryption key (secrets.encryption_key or secrets.encryption_key_file)")

func signingKeyAAD(id string) []byte { return []byte("signing_keys/" + id) }

func secretAAD(name string, version int) []byte {
	return []byte("server_secrets/" + name + "/" + strconv.Itoa(version))
}

// SigningKeys lists keys that are active or were retired after since, oldest first.
func (s *Store) SigningKeys(ctx context.Context, since time.Time) ([]auth.StoredKey, error) {
	var rows []signingKeyRow
	if err := s.db.WithContext(ctx).Where("retired_at IS NULL OR retired_at > ?", since.UTC()).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	keys := make([]auth.StoredKey, 0, len(rows))
	for _, r := range rows {
		pk, err := s.open(s.keysBox(), r.PrivateKey, signingKeyAAD(r.ID))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
		}
		keys = append(keys, auth.StoredKey{ID: r.ID, Alg: r.Alg, PrivateKey: pk, CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt})
	}
	return keys, nil
}

// AddSigningKey stores a new key; when retireOthers is set, every active key of the same algorithm
// is retired in the same transaction, which is what `latch keys rotate` does.
func (s *Store) AddSigningKey(ctx context.Context, k auth.StoredKey, retireOthers bool) error {
	now := s.now()
	pk, err := s.seal(s.keysBox(), k.PrivateKey, signingKeyAAD(k.ID))
	if err != nil {
		return err
	}
	row := signingKeyRow{ID: k.ID, Alg: k.Alg, PrivateKey: pk, CreatedAt: now}
	return s.tx(ctx, func(tx *gorm.DB) error {
		if retireOthers {
			if err := tx.Exec(`UPDATE signing_keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL`, now, k.Alg).Error; err != nil {
				return err
			}
		}
		return tx.Create(&row).Error
	})
}

// secretRow is one version of a named server secret, sealed when the store has a keyring.
type secretRow struct {
	Name      string
	Version   int
	Value     []byte
	CreatedAt time.Time
}

func (secretRow) TableName() string { return "server_secrets" }

// Secrets returns every version of a named secret, newest first; it creates version 1 from gen when
// none exists. Instances racing at first start all end up with the one that was inserted first.
func (s *Store) Secrets(ctx context.Context, name string, gen func() ([]byte, error)) ([][]byte, error) {
	var rows []secretRow
	if err := s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		return s.secretValues(rows)
	}
	v, err := gen()
	if err != nil {
		return nil, err
	}
	if v, err = s.seal(s.secretsBox(), v, secretAAD(name, 1)); err != nil {
		return nil, err
	}
	row := secretRow{Name: name, Version: 1, Value: v, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, err
	}
	if err := s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	return s.secretValues(rows)
}

func (s *Store) secretValues(rows []secretRow) ([][]byte, error) {
	out := make([][]byte, 0, len(rows))
	for _, r := range rows {
		v, err := s.open(s.secretsBox(), r.Value, secretAAD(r.Name, r.Version))
		if err != nil {
			return nil, fmt.Errorf("server secret %s v%d: %w", r.Name, r.Version, err)
		}
		out = append(out, v)
	}
	return out, nil
}
