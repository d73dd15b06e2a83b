package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/logging"
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

// TestLogDriverIsDurableWhenSendReturns: the process log is buffered and flushed every 200 ms; the
// outbox marks a message sent when Send returns, so a crash in between lost the code. Send makes the
// line durable first.
func TestLogDriverIsDurableWhenSendReturns(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "latch.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buffered := logging.NewBuffered(out, time.Hour)
	defer buffered.Close()
	sender := latchmail.NewLog(slog.New(slog.NewJSONHandler(buffered, nil)))
	sender.Sync = buffered.Flush
	if err := sender.Send(context.Background(), codeMessage(t, "ada@example.com", "918273")); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(written), "918273") {
		t.Error("Send returned while the logged code was still in the buffer")
	}
}
