package apptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail/mailtest"
)

// Credentials is the body of register and login.
func Credentials(email, password string) map[string]string {
	return map[string]string{"email": email, "password": password}
}

// EmailCode is the body of validate-register and validate-login.
func EmailCode(email, code string) map[string]string {
	return map[string]string{"email": email, "emailToken": code}
}

// OtherCode is a well-formed code that is not code.
func OtherCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

// MailTo waits for the next email to the address and returns it.
func (in *Instance) MailTo(t testing.TB, email string) mailtest.Received {
	t.Helper()
	m, err := in.SMTP.WaitFor(email, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// CodeFor waits for the next email to the address and returns the six-digit code in it.
func (in *Instance) CodeFor(t testing.TB, email string) string {
	t.Helper()
	m := in.MailTo(t, email)
	code, ok := mailtest.ExtractCode(m.Text)
	if !ok {
		t.Fatalf("no code in the email to %s: %q", email, m.Text)
	}
	return code
}

// Signup registers and validates an account, returning its first token pair.
func (in *Instance) Signup(t testing.TB, email, password string) TokenPair {
	t.Helper()
	WantStatus(t, in.Post(t, "/v2/auth/register", Credentials(email, password)), http.StatusCreated)
	r := in.Post(t, "/v2/auth/validate-register", EmailCode(email, in.CodeFor(t, email)))
	WantStatus(t, r, http.StatusOK)
	return r.TokenPair(t)
}

// LoginStep sends only the password step of a login.
func (in *Instance) LoginStep(t testing.TB, email, password string, headers ...string) Response {
	t.Helper()
	return in.Post(t, "/v2/auth/login", Credentials(email, password), headers...)
}

// Login runs login and validate-login and returns the token pair. It first moves the clock past the
// resend cooldown, so that repeated logins in one test are not refused.
func (in *Instance) Login(t testing.TB, email, password string) TokenPair {
	t.Helper()
	in.Clock.Advance(in.Config.Codes.ResendCooldown + time.Second)
	WantStatus(t, in.LoginStep(t, email, password), http.StatusOK)
	r := in.Post(t, "/v2/auth/validate-login", EmailCode(email, in.CodeFor(t, email)))
	WantStatus(t, r, http.StatusOK)
	return r.TokenPair(t)
}

// Refresh presents a refresh token in the body.
func (in *Instance) Refresh(t testing.TB, refresh string) Response {
	t.Helper()
	return in.Post(t, "/v2/auth/refresh", map[string]string{"refreshToken": refresh})
}

// Rotate refreshes and requires a new token pair.
func (in *Instance) Rotate(t testing.TB, refresh string) TokenPair {
	t.Helper()
	r := in.Refresh(t, refresh)
	WantStatus(t, r, http.StatusOK)
	p := r.TokenPair(t)
	if p.AccessToken == "" || p.RefreshToken == "" || p.RefreshToken == refresh {
		t.Fatalf("refresh answered %+v: want a new access and refresh token", p)
	}
	return p
}

// Me is the answer of GET /v2/auth/me.
type Me struct {
	ID            string          `json:"id"`
	Email         string          `json:"email"`
	EmailVerified bool            `json:"emailVerified"`
	CreatedAt     time.Time       `json:"createdAt"`
	TenantID      string          `json:"tenantId"`
	Role          string          `json:"role"`
	Metadata      json.RawMessage `json:"metadata"`
}

// Me asks who the access token belongs to, requiring a 200.
func (in *Instance) Me(t testing.TB, access string) Me {
	t.Helper()
	r := in.Get(t, "/v2/auth/me", Bearer(access)...)
	WantStatus(t, r, http.StatusOK)
	var me Me
	r.JSON(t, &me)
	return me
}

// HashPassword hashes with the instance's own hasher, for users written straight to the store.
func (in *Instance) HashPassword(t testing.TB, password string) string {
	t.Helper()
	hash, err := in.App.Hasher.Hash(context.Background(), password)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

// InsertVerifiedUsers writes active users with verified emails and the password hash straight to the
// store, skipping the mail round trip of a signup.
func (in *Instance) InsertVerifiedUsers(t testing.TB, passwordHash string, emails ...string) {
	t.Helper()
	verified := in.Clock.Now()
	for _, e := range emails {
		if err := in.App.Store.CreateUser(context.Background(), &auth.User{Email: e, EmailVerifiedAt: &verified}, passwordHash, auth.Event{}); err != nil {
			t.Fatal(err)
		}
	}
}

// OutboxRow is one outbox row as the database holds it.
type OutboxRow struct {
	To        string
	Template  string
	Data      *string
	Attempts  int
	Sent      bool
	Dead      bool // refused for good by the mail server
	LastError *string
}

// OutboxRows reads the whole outbox, oldest first.
func (in *Instance) OutboxRows(t testing.TB) []OutboxRow {
	t.Helper()
	rows, err := in.App.Store.SQLDB().Query(`SELECT to_addr, template, data, attempts, sent_at IS NOT NULL, dead_at IS NOT NULL, last_error
		FROM outbox ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.To, &r.Template, &r.Data, &r.Attempts, &r.Sent, &r.Dead, &r.LastError); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// OutboxRowsTo is the outbox rows addressed to one recipient, oldest first.
func (in *Instance) OutboxRowsTo(t testing.TB, to string) []OutboxRow {
	t.Helper()
	var out []OutboxRow
	for _, r := range in.OutboxRows(t) {
		if strings.EqualFold(r.To, to) {
			out = append(out, r)
		}
	}
	return out
}

// Eventually polls cond until it holds, failing after a generous deadline: for conditions that
// another goroutine (the outbox worker) makes true, never for the passing of time.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Password is a password every policy accepts, for accounts whose password is not what is tested.
const Password = "correct horse battery"

// TOTPCode is the authenticator code of secret at a time, from pquerna/otp's generator rather than
// Latch's own TOTP package.
func TOTPCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TOTPSetup is the answer of POST /v2/auth/totp/setup.
type TOTPSetup struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauthUrl"`
	QRCode     string `json:"qrCode"`
}

// EnableTOTP turns on an authenticator for the user of access (whose password is password) and
// returns its secret and recovery codes, having read the notice email. The clock then moves to the next 30-second step, so the
// next code the test computes is not the one that enabled it.
func (in *Instance) EnableTOTP(t testing.TB, access, password string) (secret string, recovery []string) {
	t.Helper()
	me := in.Me(t, access)
	r := in.Post(t, "/v2/auth/totp/setup", map[string]string{"password": password}, Bearer(access)...)
	WantStatus(t, r, http.StatusOK)
	var setup TOTPSetup
	r.JSON(t, &setup)
	r = in.Post(t, "/v2/auth/totp/enable", map[string]string{"otp": TOTPCode(t, setup.Secret, in.Clock.Now())}, Bearer(access)...)
	WantStatus(t, r, http.StatusOK)
	var codes struct {
		RecoveryCodes []string `json:"recoveryCodes"`
	}
	r.JSON(t, &codes)
	// The notice that the authenticator is on, read here so that the test's next email is its own.
	if m := in.MailTo(t, me.Email); !strings.Contains(m.Text, "authenticator app") {
		t.Fatalf("the email after enabling TOTP is not its notice: %q", m.Subject)
	}
	in.Clock.Advance(30 * time.Second)
	return setup.Secret, codes.RecoveryCodes
}

// LoginOTP sends a login with its second step at once.
func (in *Instance) LoginOTP(t testing.TB, email, password, code string) Response {
	t.Helper()
	return in.Post(t, "/v2/auth/login", map[string]string{"email": email, "password": password, "otp": code})
}
