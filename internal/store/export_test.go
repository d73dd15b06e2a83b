package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// GroupStatements makes the store send every rotation and user lookup through the many-row
// statements, a group of one included.
func (s *Store) GroupStatements() { s.groupStatements = true }

// Rotation is one rotation of a group handed to RotateGroup.
type Rotation struct {
	OldHash, NewHash []byte
	IdleTTL          time.Duration
}

// RotateGroup runs rotations as one group, as the batcher would, bypassing its rule that one token is
// never twice in a group, and returns each one's outcome.
func (s *Store) RotateGroup(ctx context.Context, in []Rotation) ([]auth.Rotated, []error, error) {
	rs := make([]rotation, len(in))
	for i, r := range in {
		rs[i] = rotation{oldHash: r.OldHash, newHash: r.NewHash, idleTTL: r.IdleTTL}
	}
	res, err := s.rotateBatch(ctx, rs)
	if err != nil {
		return nil, nil, err
	}
	outs, errs := make([]auth.Rotated, len(res)), make([]error, len(res))
	for i, r := range res {
		outs[i], errs[i] = r.out, r.err
	}
	return outs, errs, nil
}

// UsersByIDStatement is the user lookup of a group, for the plan test.
const UsersByIDStatement = usersByIDPostgres

// RotateBatchStatement is the many-row rotation, for the plan test.
const RotateBatchStatement = rotatePostgresBatch

// RotateStatement lets the plan test explain the exact rotation statement.
const RotateStatement = rotatePostgres

// UserListSQL is the exact statement ListUsers runs for q, with its values in place, for the plan test.
func (s *Store) UserListSQL(q auth.UserQuery) string {
	query, args := s.userList(q)
	return s.db.ToSQL(func(tx *gorm.DB) *gorm.DB { return tx.Raw(query, args...).Scan(&[]userRow{}) })
}

// EventListSQL is the exact statement ListEvents runs for q, with its values in place.
func (s *Store) EventListSQL(q auth.EventQuery) string {
	return s.db.ToSQL(func(tx *gorm.DB) *gorm.DB { return eventList(tx, q).Find(&[]eventRow{}) })
}
