package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	latchmail "github.com/latch-auth/latch/internal/mail"
)

func TestLogWritesTheMessageWithItsCode(t *testing.T) {
	var buf bytes.Buffer
	sender := latchmail.NewLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	m := codeMessage(t, "ada@example.com", "918273")

	if err := sender.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log records, want 1:\n%s", len(lines), buf.String())
	}
	var rec struct {
		Level, To, Subject, Text string
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := struct{ Level, To, Subject, Text string }{"INFO", "ada@example.com", "Your Latch login code: 918273", m.Text}
	if diff := cmp.Diff(want, struct{ Level, To, Subject, Text string }(rec)); diff != "" {
		t.Errorf("log record (-want +got):\n%s", diff)
	}
	if !strings.Contains(rec.Text, "918273") {
		t.Errorf("logged text lacks the code: %q", rec.Text)
	}
}
