package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/seal"
)

// boxes seal what the store keeps at rest that would be worth stealing: outbox payloads (live email
// codes), generated signing keys and server secrets, each under its own key derived from the
// key-encryption key. A store without them (tests of other things) keeps those values in plain;
// either way a value still in plain is read as such (seal.IsSealed tells them apart), so rows written
// before sealing was turned on stay readable until SealAtRest seals them.
type boxes struct {
	current               uint32
	outbox, keys, secrets *seal.Box
}

// UseKeyring seals at rest under k, the key-encryption key.
func (s *Store) UseKeyring(k *seal.Keyring) error {
	b := boxes{current: k.CurrentVersion()}
	var err error
	if b.outbox, err = k.For(seal.PurposeOutbox); err != nil {
		return err
	}
	if b.keys, err = k.For(seal.PurposeSigningKeys); err != nil {
		return err
	}
	if b.secrets, err = k.For(seal.PurposeServerSecrets); err != nil {
		return err
	}
	s.boxes = &b
	return nil
}

func (s *Store) outboxBox() *seal.Box {
	if s.boxes == nil {
		return nil
	}
	return s.boxes.outbox
}

func (s *Store) keysBox() *seal.Box {
	if s.boxes == nil {
		return nil
	}
	return s.boxes.keys
}

func (s *Store) secretsBox() *seal.Box {
	if s.boxes == nil {
		return nil
	}
	return s.boxes.secrets
}

// seal seals a binary value, or returns it as is without a keyring.
func (s *Store) seal(box *seal.Box, plain, aad []byte) ([]byte, error) {
	if box == nil {
		return plain, nil
	}
	return box.Seal(plain, aad)
}

// open reads a value as stored: sealed or, from before sealing, plain.
func (s *Store) open(box *seal.Box, stored, aad []byte) ([]byte, error) {
	if !seal.IsSealed(stored) {
		return stored, nil
	}
	if box == nil {
		return nil, ErrSealedElsewhere
	}
	plain, err := box.Open(stored, aad)
	if errors.Is(err, seal.ErrUnknownVersion) || errors.Is(err, seal.ErrTampered) {
		return nil, fmt.Errorf("%w: %w", ErrSealedElsewhere, err)
	}
	return plain, err
}

func outboxAAD(id string) []byte { return []byte("outbox/" + id) }

// sealOutbox seals an outbox payload bound to its row.
func (s *Store) sealOutbox(id, data string) (string, error) {
	if s.boxes == nil {
		return data, nil
	}
	return s.boxes.outbox.SealText([]byte(data), outboxAAD(id))
}

func (s *Store) openOutbox(id, stored string) (string, error) {
	b, err := s.open(s.outboxBox(), []byte(stored), outboxAAD(id))
	return string(b), err
}

// due reports whether a stored value must be (re)sealed: it is in plain, or sealed under an older
// version of the key-encryption key.
func (s *Store) due(stored []byte) bool {
	if !seal.IsSealed(stored) {
		return true
	}
	v, err := seal.KeyVersion(stored)
	return err == nil && v != s.boxes.current
}

// atRest is one value stored at rest: what identifies its row, what is stored, and how it is sealed.
type atRest struct {
	what   string // for errors: "signing key <id>"
	stored []byte
	aad    []byte
	box    *seal.Box
	text   bool   // the text form, for a text column
	update string // "UPDATE t SET col = ? WHERE <row> AND col = ?"
	row    []any  // the arguments of <row>
}

// reseal rewrites v sealed under the current key, if it is due and its row still holds what was read.
func (s *Store) reseal(tx *gorm.DB, v atRest) (int64, error) {
	if !s.due(v.stored) {
		return 0, nil
	}
	plain, err := s.open(v.box, v.stored, v.aad)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", v.what, err)
	}
	var sealed any
	if v.text {
		sealed, err = v.box.SealText(plain, v.aad)
	} else {
		sealed, err = v.box.Seal(plain, v.aad)
	}
	if err != nil {
		return 0, err
	}
	var current any = v.stored
	if v.text {
		current = string(v.stored)
	}
	res := tx.Exec(v.update, append(append([]any{sealed}, v.row...), current)...)
	return res.RowsAffected, res.Error
}

// SealAtRest seals what earlier versions kept in plain (signing keys, server secrets, the payloads of
// unsent mail), and re-seals values sealed under an older version of the key-encryption key, so a key
// can be rotated. Each row is rewritten only if it still holds what was read, so instances starting
// together do not undo each other. It answers how many rows it rewrote.
func (s *Store) SealAtRest(ctx context.Context) (int, error) {
	if s.boxes == nil {
		return 0, nil
	}
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var values []atRest
		var keys []signingKeyRow
		if err := tx.Find(&keys).Error; err != nil {
			return err
		}
		for _, k := range keys {
			values = append(values, atRest{what: "signing key " + k.ID, stored: k.PrivateKey, aad: signingKeyAAD(k.ID), box: s.boxes.keys,
				update: `UPDATE signing_keys SET private_key = ? WHERE id = ? AND private_key = ?`, row: []any{k.ID}})
		}
		var secrets []secretRow
		if err := tx.Find(&secrets).Error; err != nil {
			return err
		}
		for _, r := range secrets {
			values = append(values, atRest{what: fmt.Sprintf("server secret %s v%d", r.Name, r.Version), stored: r.Value,
				aad: secretAAD(r.Name, r.Version), box: s.boxes.secrets,
				update: `UPDATE server_secrets SET value = ? WHERE name = ? AND version = ? AND value = ?`, row: []any{r.Name, r.Version}})
		}
		var pending []outboxRow
		if err := tx.Where("data IS NOT NULL AND sent_at IS NULL").Find(&pending).Error; err != nil {
			return err
		}
		for _, r := range pending {
			values = append(values, atRest{what: "outbox " + r.ID, stored: []byte(*r.Data), aad: outboxAAD(r.ID), box: s.boxes.outbox, text: true,
				update: `UPDATE outbox SET data = ? WHERE id = ? AND data = ?`, row: []any{r.ID}})
		}
		for _, v := range values {
			rewritten, err := s.reseal(tx, v)
			if err != nil {
				return err
			}
			n += rewritten
		}
		return nil
	})
	return int(n), err
}
