package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latch-auth/latch/internal/auth"
)

// signingKeyRow is a stored JWT signing key (PKCS#8 PEM, or raw bytes for HS256).
type signingKeyRow struct {
	ID         string
	Alg        string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

// SigningKeys lists keys that are active or were retired after since, oldest first.
func (s *Store) SigningKeys(ctx context.Context, since time.Time) ([]auth.StoredKey, error) {
	var rows []signingKeyRow
	err := s.db.WithContext(ctx).Where("retired_at IS NULL OR retired_at > ?", since.UTC()).Order("created_at, id").Find(&rows).Error
	keys := make([]auth.StoredKey, 0, len(rows))
	for _, r := range rows {
		keys = append(keys, auth.StoredKey{ID: r.ID, Alg: r.Alg, PrivateKey: r.PrivateKey, CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt})
	}
	return keys, err
}

// AddSigningKey stores a new key; when retireOthers is set, every active key of the same algorithm
// is retired in the same transaction, which is what `latch keys rotate` does.
func (s *Store) AddSigningKey(ctx context.Context, k auth.StoredKey, retireOthers bool) error {
	now := s.now()
	row := signingKeyRow{ID: k.ID, Alg: k.Alg, PrivateKey: k.PrivateKey, CreatedAt: now}
	return s.tx(ctx, func(tx *gorm.DB) error {
		if retireOthers {
			if err := tx.Exec(`UPDATE signing_keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL`, now, k.Alg).Error; err != nil {
				return err
			}
		}
		return tx.Create(&row).Error
	})
}

// secretRow is one version of a named server secret.
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
		return secretValues(rows), nil
	}
	v, err := gen()
	if err != nil {
		return nil, err
	}
	row := secretRow{Name: name, Version: 1, Value: v, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, err
	}
	err = s.db.WithContext(ctx).Where("name = ?", name).Order("version DESC").Find(&rows).Error
	return secretValues(rows), err
}

func secretValues(rows []secretRow) [][]byte {
	out := make([][]byte, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Value)
	}
	return out
}
