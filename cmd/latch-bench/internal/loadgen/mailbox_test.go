package loadgen

import (
	"context"
	"errors"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mimecode"
)

func listen(t *testing.T) *Mailbox {
	t.Helper()
	mb, err := ListenSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	return mb
}

// TestMailboxReceivesLatchMail sends a real rendered login email through Latch's own SMTP driver: the
// address holds a six-digit run and the body is quoted-printable, neither of which may confuse the
// code extraction.
func TestMailboxReceivesLatchMail(t *testing.T) {
	mb := listen(t)
	to := "bench-123456-7@example.test"
	mb.expect(strings.ToUpper(to))
	sender, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: mb.Port(), TLS: mail.TLSNone, From: "Latch <no-reply@localhost>"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := r.Render(mail.LoginCode, to, mail.Data{Code: "042917", ValidMinutes: 10, Replaced: true})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := sender.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got, err := mb.next(context.Background(), to, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("042917", got.Code); diff != "" {
		t.Errorf("code (-want +got):\n%s", diff)
	}
	if got.Arrived.Before(before) || got.Arrived.After(time.Now()) {
		t.Errorf("arrived %v, outside the send", got.Arrived)
	}
}

func TestMailboxDropsMailToUnexpectedAddresses(t *testing.T) {
	mb := listen(t)
	mb.expect("kept@example.test")
	raw := "Subject: code\r\n\r\nYour code: 111222\r\n"
	if err := smtp.SendMail(mb.Addr().String(), nil, "a@example.test", []string{"stranger@example.test", "kept@example.test"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	got, err := mb.next(context.Background(), "kept@example.test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != "111222" {
		t.Errorf("code = %q, want 111222", got.Code)
	}
	if mb.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", mb.Dropped())
	}
}

func TestMailboxNextTimesOutAndDrainForgetsStaleMail(t *testing.T) {
	mb := listen(t)
	mb.expect("late@example.test")
	if _, err := mb.next(context.Background(), "late@example.test", time.Millisecond); !errors.Is(err, ErrMailTimeout) {
		t.Fatalf("next with no mail = %v, want ErrMailTimeout", err)
	}
	if err := smtp.SendMail(mb.Addr().String(), nil, "a@example.test", []string{"late@example.test"}, []byte("Subject: x\r\n\r\ncode 333444\r\n")); err != nil {
		t.Fatal(err)
	}
	mb.drain("late@example.test")
	if _, err := mb.next(context.Background(), "late@example.test", time.Millisecond); !errors.Is(err, ErrMailTimeout) {
		t.Errorf("next after drain = %v, want ErrMailTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mb.next(ctx, "late@example.test", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("next on a cancelled context = %v, want context.Canceled", err)
	}
}

// TestMailboxReportsMailWithoutCode checks that a message without a code, or one that cannot be
// read, reaches the waiting worker as an error instead of a wrong code or a timeout.
func TestMailboxReportsMailWithoutCode(t *testing.T) {
	mb := listen(t)
	for _, tt := range []struct {
		to, raw string
		want    error
	}{
		{"nocode@example.test", "Subject: Someone tried to sign up\r\n\r\nSomeone used bench-1234567-1@example.test; 1234567 is no code.\r\n", ErrNoCode},
		{"garbled@example.test", "Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n123456\r\n", mimecode.ErrUnreadable},
	} {
		mb.expect(tt.to)
		if err := smtp.SendMail(mb.Addr().String(), nil, "a@example.test", []string{tt.to}, []byte(tt.raw)); err != nil {
			t.Fatal(err)
		}
		got, err := mb.next(context.Background(), tt.to, 5*time.Second)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: next = %+v, %v; want %v", tt.to, got, err, tt.want)
		}
		if got.Code != "" {
			t.Errorf("%s: code %q from a message without one", tt.to, got.Code)
		}
	}
}
