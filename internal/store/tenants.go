package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// tenantRow is a row of tenants. Settings are one JSON object, read through the service's cache and
// never by a hot statement, so a new setting needs no migration.
type tenantRow struct {
	ID        string
	Name      string
	Settings  string
	CreatedAt time.Time
}

func (tenantRow) TableName() string { return "tenants" }

// storedSettings is the JSON of tenants.settings, with the snake_case names of the default_tenant
// block of config.yaml. Absent keys take the defaults of auth.DefaultTenantSettings.
type storedSettings struct {
	SecondStep      string          `json:"second_step,omitempty"`
	RefreshRotation *bool           `json:"refresh_rotation,omitempty"`
	AppName         string          `json:"app_name,omitempty"`
	MailFrom        string          `json:"mail_from,omitempty"`
	Locale          *string         `json:"locale,omitempty"`
	AllowedOrigins  []string        `json:"allowed_origins,omitempty"`
	Routes          json.RawMessage `json:"routes,omitempty"`
	Issuer          string          `json:"issuer,omitempty"`
}

func settingsJSON(st auth.TenantSettings) (string, error) {
	rotation, locale := st.RefreshRotation, st.Locale
	b, err := json.Marshal(storedSettings{SecondStep: st.SecondStep, RefreshRotation: &rotation, AppName: st.AppName,
		MailFrom: st.MailFrom, Locale: &locale, AllowedOrigins: st.AllowedOrigins, Routes: st.Routes, Issuer: st.Issuer})
	return string(b), err
}

func (r tenantRow) tenant() (auth.Tenant, error) {
	t := auth.Tenant{ID: r.ID, Name: r.Name, Settings: auth.DefaultTenantSettings(), CreatedAt: r.CreatedAt}
	var st storedSettings
	if err := json.Unmarshal([]byte(r.Settings), &st); err != nil {
		return t, fmt.Errorf("tenant %s: settings: %w", r.ID, err)
	}
	s := &t.Settings
	if st.SecondStep != "" {
		s.SecondStep = st.SecondStep
	}
	if st.RefreshRotation != nil {
		s.RefreshRotation = *st.RefreshRotation
	}
	if st.Locale != nil {
		s.Locale = *st.Locale
	}
	s.AppName, s.MailFrom, s.Issuer = st.AppName, st.MailFrom, st.Issuer
	if st.AllowedOrigins != nil {
		s.AllowedOrigins = st.AllowedOrigins
	}
	if len(st.Routes) > 0 {
		s.Routes = st.Routes
	}
	return t, nil
}

// CreateTenant inserts a tenant; a taken id or name answers auth.ErrConflict.
func (s *Store) CreateTenant(ctx context.Context, t *auth.Tenant, ev auth.Event) error {
	settings, err := settingsJSON(t.Settings)
	if err != nil {
		return err
	}
	now := s.now()
	t.CreatedAt = now
	return s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Create(&tenantRow{ID: t.ID, Name: t.Name, Settings: settings, CreatedAt: now}).Error
		if isUniqueViolation(err) {
			return auth.ErrConflict
		}
		if err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}

// TenantByID returns a tenant as stored.
func (s *Store) TenantByID(ctx context.Context, id string) (auth.Tenant, error) {
	var r tenantRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return auth.Tenant{}, notFound(err)
	}
	return r.tenant()
}

// ListTenants returns tenants in id order after the given id, at most limit (0 for all).
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]auth.Tenant, error) {
	q := s.db.WithContext(ctx).Where("id > ?", after).Order("id")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rows []tenantRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]auth.Tenant, 0, len(rows))
	for _, r := range rows {
		t, err := r.tenant()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// UpdateTenant applies a change to a tenant under a lock on its row, so two operators' changes are
// merged one after the other instead of the later overwriting the earlier.
func (s *Store) UpdateTenant(ctx context.Context, id string, apply func(*auth.Tenant) error, ev auth.Event) (auth.Tenant, error) {
	now := s.now()
	var t auth.Tenant
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var rows []tenantRow
		if err := tx.Raw("SELECT * FROM tenants WHERE id = ?"+s.lockClause(), id).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return auth.ErrNotFound
		}
		var err error
		if t, err = rows[0].tenant(); err != nil {
			return err
		}
		if err := apply(&t); err != nil {
			return err
		}
		settings, err := settingsJSON(t.Settings)
		if err != nil {
			return err
		}
		err = tx.Exec(`UPDATE tenants SET name = ?, settings = ? WHERE id = ?`, t.Name, settings, id).Error
		if isUniqueViolation(err) {
			return auth.ErrConflict
		}
		if err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
	return t, err
}

// DeleteTenant deletes a tenant with its admin keys (by cascade), erasing its users when withUsers is
// set. Without it the users' foreign key refuses the delete while any user exists, so a user created
// meanwhile cannot be orphaned.
func (s *Store) DeleteTenant(ctx context.Context, id string, withUsers bool, ev auth.Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if withUsers {
			if err := s.eraseUsers(tx, "tenant_id = ?", id); err != nil {
				return err
			}
		} else {
			var users []string
			if err := tx.Raw(`SELECT id FROM users WHERE tenant_id = ? LIMIT 1`, id).Scan(&users).Error; err != nil {
				return err
			}
			if len(users) > 0 {
				return auth.ErrConflict
			}
		}
		prefix := id + ":" // throttle subjects are "<tenant>:<email>", unknown addresses' too
		if err := tx.Exec(`DELETE FROM login_failures WHERE substr(subject, 1, ?) = ?`, len(prefix), prefix).Error; err != nil {
			return err
		}
		res := tx.Exec(`DELETE FROM tenants WHERE id = ?`, id)
		if isForeignKeyViolation(res.Error) {
			return auth.ErrConflict
		}
		if err := affectedOne(res); err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}
