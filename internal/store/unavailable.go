package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// unavailable marks an error that says the database did not answer, in time or at all, with
// auth.ErrUnavailable, so the request it failed is answered 503 and retried rather than a 500.
// Errors that say something about the request (a constraint, a missing row) pass unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, auth.ErrUnavailable) || !unreachable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
}

// batchFailed marks the error of a statement run for a group of requests (batch.go). Besides what
// unavailable marks, a deadlock or serialization failure aborted the whole group through no fault of
// any request in it, and a retry will most likely succeed: 503 as well, not 500.
func batchFailed(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	return unavailable(err)
}

func unreachable(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), pgconn.Timeout(err):
		return true
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: too many connections, out of memory or disk
			"57", // operator intervention: query cancelled, admin shutdown, cannot connect now
			"58": // system error (I/O)
			return true
		}
		return pgErr.Code == "55P03" // lock not available
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case 5, 6, 9: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT (the context ended)
			return true
		}
	}
	return false
}

// classifying lets GORM mark every error it meets: it hands them to Translate when TranslateError is
// on, which covers every ORM statement, transaction begin and commit included, except the row query
// behind Raw(...).Scan, which sets its error directly; markRowErrors covers that one.
type classifying struct{ gorm.Dialector }

func (classifying) Translate(err error) error { return unavailable(err) }

func markRowErrors(db *gorm.DB) error {
	return db.Callback().Row().After("gorm:row").Register("latch:unavailable", func(db *gorm.DB) {
		db.Error = unavailable(db.Error)
	})
}
