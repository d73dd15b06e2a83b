package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	latchmail "github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
)

func subjects(msgs []latchmail.Received) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Subject
	}
	return out
}

func TestInboxNewestFirstCappedAndCaseInsensitive(t *testing.T) {
	srv := mailtest.NewServer(t)
	inbox := latchmail.NewInbox(newSMTP(t, smtpConfig(srv, latchmail.TLSNone)), 3)
	ctx := context.Background()

	for _, m := range []latchmail.Message{
		{To: "Ada@Example.com", Subject: "1", Text: "one"},
		{To: "bob@example.com", Subject: "bob", Text: "for bob"},
		{To: "ada@example.com", Subject: "2", Text: "two"},
		{To: "ADA@EXAMPLE.COM", Subject: "3", Text: "three"},
		{To: "ada@example.com", Subject: "4", Text: "four"},
	} {
		if err := inbox.Send(ctx, m); err != nil {
			t.Fatalf("Send(%s): %v", m.Subject, err)
		}
	}

	if diff := cmp.Diff([]string{"4", "3", "2"}, subjects(inbox.List("aDa@example.COM"))); diff != "" {
		t.Errorf("ada's inbox (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob"}, subjects(inbox.List("bob@example.com"))); diff != "" {
		t.Errorf("bob's inbox (-want +got):\n%s", diff)
	}
	if got := inbox.List("nobody@example.com"); got == nil || len(got) != 0 {
		t.Errorf("unknown recipient's inbox = %#v, want empty and non-nil", got)
	}
	if n := len(srv.Messages()); n != 5 {
		t.Errorf("forwarded %d messages, want 5", n)
	}
}

func TestInboxRecordsOnlyDeliveredMail(t *testing.T) {
	srv := mailtest.NewServer(t)
	inbox := latchmail.NewInbox(newSMTP(t, smtpConfig(srv, latchmail.TLSNone)), 10)
	srv.Stop()

	if err := inbox.Send(context.Background(), latchmail.Message{To: "ada@example.com", Subject: "lost", Text: "x"}); err == nil {
		t.Fatal("Send through a stopped server succeeded")
	}
	if got := inbox.List("ada@example.com"); len(got) != 0 {
		t.Errorf("inbox kept an undelivered message: %#v", got)
	}
}

func TestInboxListIsACopy(t *testing.T) {
	inbox := latchmail.NewInbox(nil, 0)
	if err := inbox.Send(context.Background(), latchmail.Message{To: "ada@example.com", Subject: "kept"}); err != nil {
		t.Fatal(err)
	}
	inbox.List("ada@example.com")[0].Subject = "changed"
	if diff := cmp.Diff([]string{"kept"}, subjects(inbox.List("ada@example.com"))); diff != "" {
		t.Errorf("List exposed internal state (-want +got):\n%s", diff)
	}
}

// TestInboxStampsWhenDelivered: each message carries the inbox's clock at delivery, and what Render
// gave it (its purpose and code).
func TestInboxStampsWhenDelivered(t *testing.T) {
	inbox := latchmail.NewInbox(nil, 0)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inbox.Now = func() time.Time { return at }
	r, err := latchmail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	code, err := r.Render(latchmail.LoginCode, "ada@example.com", latchmail.Data{Code: "042917", ValidMinutes: 10})
	if err != nil {
		t.Fatal(err)
	}
	notice, err := r.Render(latchmail.PasswordChanged, "ada@example.com", latchmail.Data{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []latchmail.Message{code, notice} {
		if err := inbox.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Second)
	}
	type seen struct {
		Purpose, Code string
		SentAt        time.Time
	}
	var got []seen
	for _, m := range inbox.List("ada@example.com") {
		got = append(got, seen{m.Purpose, m.Code, m.SentAt})
	}
	want := []seen{
		{latchmail.PasswordChanged, "", time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC)},
		{latchmail.LoginCode, "042917", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inbox entries (-want +got):\n%s", diff)
	}
}
