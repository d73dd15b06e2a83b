package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SigningKey is a stored JWT signing key (PKCS#8 PEM, or raw bytes for HS256).
type SigningKey struct {
	ID         string
	Alg        string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// TableName maps SigningKey to its table.
func (SigningKey) TableName() string { return "signing_keys" }

// SigningKeys lists keys that are active or were retired after since, oldest first.
func (s *Store) SigningKeys(ctx context.Context, since time.Time) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.db.WithContext(ctx).Where("retired_at IS NULL OR retired_at > ?", since.UTC()).Order("created_at, id").Find(&keys).Error
	return keys, err
}

// AddSigningKey stores a new key; when retireOthers is set, every active key of the same algorithm
// is retired in the same transaction, which is what `latch keys rotate` does.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey, retireOthers bool) error {
	now := s.now()
	k.CreatedAt = now
	return s.tx(ctx, func(tx *gorm.DB) error {
		if retireOthers {
			if err := tx.Exec(`UPDATE signing_keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL`, now, k.Alg).Error; err != nil {
				return err
			}
		}
		return tx.Create(&k).Error
	})
}

// Secret is one version of a named server secret.
type Secret struct {
	Name      string
	Version   int
	Value     []byte
	CreatedAt time.Time
}

// TableName maps Secret to its table.
func (Secret) TableName() string { return "server_secrets" }

// Secrets returns every version of a named secret, newest first; it creates version 1 from gen when
// none exists. Instances racing at first start all end up with the one that was inserted first.
func (s *Store) Secrets(ctx context.Context, name string, gen func() ([]byte, error)) ([]Secret, error) {
	var out []Secret
	if err := s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").Find(&out).Error; err != nil {
		return nil, err
	}
	if len(out) > 0 {
		return out, nil
	}
	v, err := gen()
	if err != nil {
		return nil, err
	}
	row := Secret{Name: name, Version: 1, Value: v, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, err
	}
	err = s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").Find(&out).Error
	return out, err
}
