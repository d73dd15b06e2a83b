package mailtest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/mail/mailtest"
)

const waitTimeout = 5 * time.Second

func addr(s *mailtest.Server) string { return net.JoinHostPort(s.Host(), fmt.Sprint(s.Port())) }

func send(t *testing.T, s *mailtest.Server, auth smtp.Auth, to, raw string) error {
	t.Helper()
	return smtp.SendMail(addr(s), auth, "sender@example.com", []string{to}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

const base64Alternative = `From: sender@example.com
To: ada@example.com
Subject: =?UTF-8?q?Code_f=C3=BCr_dich?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

WW91ciBjb2RlIGlzIDY1NDMyMS4gTmV2ZXIgc2hhcmUg
aXQu
--b1
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p style=3D"x">Your code is <b>654321</b>.</p>
--b1--
`

func TestDecodesSubjectAndParts(t *testing.T) {
	srv := mailtest.NewServer(t)
	if err := send(t, srv, nil, "ada@example.com", base64Alternative); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got, err := srv.WaitFor("ada@example.com", waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	want := mailtest.Received{
		From:    "sender@example.com",
		To:      []string{"ada@example.com"},
		Subject: "Code für dich",
		Text:    "Your code is 654321. Never share it.",
		HTML:    `<p style="x">Your code is <b>654321</b>.</p>`,
	}
	got.Data = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

func TestDecodesSinglePartQuotedPrintable(t *testing.T) {
	srv := mailtest.NewServer(t)
	raw := "From: sender@example.com\nTo: ada@example.com\nSubject: plain\nContent-Type: text/plain; charset=UTF-8\n" +
		"Content-Transfer-Encoding: quoted-printable\n\nA long line that was wrapped by the encoder, the code is=\n 123456=3D\n"
	if err := send(t, srv, nil, "ada@example.com", raw); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got, err := srv.WaitFor("ada@example.com", waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("A long line that was wrapped by the encoder, the code is 123456=\r\n", got.Text); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

func TestAuthRequired(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithAuth("user", "pass"))
	raw := "Subject: hi\n\nbody\n"

	var rejected *textproto.Error
	if err := send(t, srv, nil, "ada@example.com", raw); !errors.As(err, &rejected) || rejected.Code != 502 {
		t.Errorf("send without AUTH: error = %v, want 502", err)
	}
	if err := send(t, srv, smtp.PlainAuth("", "user", "nope", srv.Host()), "ada@example.com", raw); !errors.As(err, &rejected) || rejected.Code != 535 {
		t.Errorf("send with a wrong password: error = %v, want 535", err)
	}
	if err := send(t, srv, smtp.PlainAuth("", "user", "pass", srv.Host()), "ada@example.com", raw); err != nil {
		t.Errorf("send with the right password: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("server kept %d messages, want 1", n)
	}
}

func TestWaitForReturnsEachMessageOnceInOrder(t *testing.T) {
	srv := mailtest.NewServer(t)
	for _, subj := range []string{"first", "second"} {
		if err := send(t, srv, nil, "Ada@Example.com", "Subject: "+subj+"\n\nx\n"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 2 {
		m, err := srv.WaitFor("ada@example.com", waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Subject)
	}
	if diff := cmp.Diff([]string{"first", "second"}, got); diff != "" {
		t.Errorf("WaitFor order (-want +got):\n%s", diff)
	}
	if _, err := srv.WaitFor("ada@example.com", 50*time.Millisecond); !errors.Is(err, mailtest.ErrNoMessage) {
		t.Errorf("third WaitFor error = %v, want ErrNoMessage", err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("Messages() has %d, want 2", n)
	}
}

func TestWaitForBlocksUntilArrival(t *testing.T) {
	srv := mailtest.NewServer(t)
	got := make(chan string, 1)
	go func() {
		m, err := srv.WaitFor("late@example.com", waitTimeout)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- m.Subject
	}()
	if err := send(t, srv, nil, "late@example.com", "Subject: late\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "late" {
		t.Errorf("WaitFor got %q, want the late message", s)
	}
}

func TestStopThenStartKeepsPortAndMessages(t *testing.T) {
	srv := mailtest.NewServer(t)
	port := srv.Port()
	if err := send(t, srv, nil, "ada@example.com", "Subject: before\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := send(t, srv, nil, "ada@example.com", "Subject: during\n\nx\n"); err == nil {
		t.Fatal("send to a stopped server succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Errorf("port %d after restart, want %d", srv.Port(), port)
	}
	if err := send(t, srv, nil, "ada@example.com", "Subject: after\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range srv.Messages() {
		subjects = append(subjects, m.Subject)
	}
	if diff := cmp.Diff([]string{"before", "after"}, subjects); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestImplicitTLSTrustsOnlyItsOwnCertificate(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithImplicitTLS())
	cfg := srv.TLSConfig()
	cfg.ServerName = srv.Host()
	conn, err := tls.Dial("tcp", addr(srv), cfg)
	if err != nil {
		t.Fatalf("TLS dial with the server's config: %v", err)
	}
	conn.Close()

	var verr *tls.CertificateVerificationError
	if _, err := tls.Dial("tcp", addr(srv), &tls.Config{ServerName: srv.Host()}); !errors.As(err, &verr) {
		t.Errorf("TLS dial with system roots: error = %v, want a verification error", err)
	}
}

func TestExtractCode(t *testing.T) {
	tests := []struct {
		text, want string
		ok         bool
	}{
		{"Your code is 123456.", "123456", true},
		{"123456", "123456", true},
		{"call 0123456789, then use 654321", "654321", true},
		{"12345 and 1234567 only", "", false},
		{"valid 10 minutes: 000042 ok", "000042", true},
		{"no digits", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := mailtest.ExtractCode(tt.text)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ExtractCode(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.ok)
		}
	}
}
