package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// ChangeEmail moves a user to a new address in one transaction (see auth.Users.ChangeEmail).
func (s *Store) ChangeEmail(ctx context.Context, c auth.EmailChange) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := consumeCode(tx, c.CodeID, now); err != nil {
			return err
		}
		if err := s.forgetAddresses(tx, "id = ?", c.UserID); err != nil {
			return err
		}
		err := affectedOne(tx.Exec(`UPDATE users SET email = ?, email_verified_at = ?, updated_at = ? WHERE id = ?`,
			c.NewEmail, now, now, c.UserID))
		if isUniqueViolation(err) {
			return auth.ErrConflict
		}
		if err != nil {
			return err
		}
		if _, err := s.enqueue(tx, c.UserID, auth.PurposeNotice, "", c.Mail, false, now); err != nil {
			return err
		}
		return insertEvent(tx, c.Event, now)
	})
}

// UserData reads everything held about a user (see auth.UserData), in one read-only transaction so
// its parts agree.
func (s *Store) UserData(ctx context.Context, userID string) (auth.UserData, error) {
	var d auth.UserData
	if _, err := uuid.Parse(userID); err != nil {
		return d, auth.ErrNotFound
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var u userRow
		res := tx.Raw(userSelect+"WHERE id = ?", userID).Scan(&u)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return auth.ErrNotFound
		}
		d.User = u.user()

		var sessions []sessionRow
		if err := tx.Where("user_id = ?", userID).Order("created_at DESC").Find(&sessions).Error; err != nil {
			return err
		}
		d.Sessions = make([]auth.Session, 0, len(sessions))
		for _, r := range sessions {
			d.Sessions = append(d.Sessions, r.session())
		}

		var codes []codeRow
		if err := tx.Where("user_id = ? AND used_at IS NULL", userID).Order("created_at").Find(&codes).Error; err != nil {
			return err
		}
		d.Codes = make([]auth.CodeInfo, 0, len(codes))
		for _, c := range codes {
			d.Codes = append(d.Codes, auth.CodeInfo{Purpose: c.Purpose, Attempts: c.Attempts, MaxAttempts: c.MaxAttempts,
				CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt})
		}

		var mail []struct {
			Template, Purpose, ToAddr string
			CreatedAt                 time.Time
			SentAt, DeadAt            *time.Time
		}
		if err := tx.Raw(`SELECT template, purpose, to_addr, created_at, sent_at, dead_at FROM outbox
			WHERE user_id = ? ORDER BY created_at`, userID).Scan(&mail).Error; err != nil {
			return err
		}
		d.Mail = make([]auth.MailInfo, 0, len(mail))
		for _, m := range mail {
			d.Mail = append(d.Mail, auth.MailInfo{Template: m.Template, Purpose: m.Purpose, To: m.ToAddr,
				CreatedAt: m.CreatedAt, SentAt: m.SentAt, DeadAt: m.DeadAt})
		}

		var events []eventRow
		if err := tx.Where("user_id = ?", userID).Order("id DESC").Find(&events).Error; err != nil {
			return err
		}
		d.Events = make([]auth.LoggedEvent, 0, len(events))
		for _, r := range events {
			d.Events = append(d.Events, r.logged())
		}
		return nil
	})
	return d, err
}
