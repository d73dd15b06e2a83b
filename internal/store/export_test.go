package store

import (
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

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
