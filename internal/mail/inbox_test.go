package mail_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	latchmail "github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
)

func subjects(msgs []latchmail.Message) []string {
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
