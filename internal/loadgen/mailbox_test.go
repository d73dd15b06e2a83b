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

func TestCodeFromMessage(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr error
	}{
		{
			name: "quoted-printable with a soft line break inside the code",
			raw: "Subject: =?utf-8?q?Your_login_code?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n\r\nHello bench-1-999999@example.test,=\r\n\r\n    12=\r\n3456\r\n\r\nValid for 10 minutes.\r\n",
			want: "123456",
		},
		{
			name: "multipart alternative, base64 text part, HTML with colours",
			raw: "Subject: code\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n--XX\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				"VXNlIHRoaXMgY29kZTogNjU0\r\nMzIx\r\n--XX\r\nContent-Type: text/html\r\n\r\n<p style=\"color:#333333\">654321</p>\r\n--XX--\r\n",
			want: "654321",
		},
		{
			name: "code only in the HTML part",
			raw: "Subject: hi\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nno code here\r\n" +
				"--B\r\nContent-Type: text/html\r\n\r\n<p>Code:</p><p>777888</p>\r\n--B--\r\n",
			want: "777888",
		},
		{
			name: "code in the subject",
			raw:  "Subject: Your Latch login code: 024680\r\n\r\nsee subject\r\n",
			want: "024680",
		},
		{
			name:    "no code",
			raw:     "Subject: Someone tried to sign up\r\n\r\nSomeone used bench-1234567-1@example.test on 2024-01-02; 1234567 is not a code.\r\n",
			wantErr: ErrNoCode,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := codeFromMessage([]byte(tt.raw))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("code (-want +got):\n%s", diff)
			}
		})
	}
}
