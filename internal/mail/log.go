package mail

import (
	"context"
	"log/slog"
)

// Sender delivers one rendered message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Log is the development and sandbox driver: it writes each message, code included, to the log instead of
// sending it. Never use it where the log is less private than the mailbox.
type Log struct {
	logger *slog.Logger
	// Sync, when set, makes what was logged durable (flushes a buffered log writer). Send calls it
	// before it returns, so a message is never recorded as sent while its line can still be lost.
	Sync func() error
}

// NewLog returns a Log writing to logger, or to slog.Default() when logger is nil.
func NewLog(logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{logger: logger}
}

// Send logs one INFO record with the recipient, subject and text body.
func (l *Log) Send(ctx context.Context, m Message) error {
	attrs := []slog.Attr{slog.String("to", m.To)}
	if m.From != "" {
		attrs = append(attrs, slog.String("from", m.From))
	}
	l.logger.LogAttrs(ctx, slog.LevelInfo, "email (log driver, not sent)", append(attrs,
		slog.String("subject", m.Subject),
		slog.String("text", m.Text))...)
	if l.Sync != nil {
		return l.Sync()
	}
	return nil
}
