package mail

import (
	"context"
	"net/mail"
	"strings"
	"sync"
	"time"
)

// DefaultInboxSize is how many messages per recipient an Inbox keeps when asked for a non-positive number.
const DefaultInboxSize = 20

// Inbox keeps the last messages per recipient in memory (the sandbox inbox, GET /v2/sandbox/emails?to=),
// wrapping another Sender. It is per process: with several instances each only sees the mail it sent itself.
type Inbox struct {
	next         Sender
	perRecipient int
	// Now stamps each message as it is recorded (the instance's clock, so tests can move it).
	Now func() time.Time

	mu    sync.Mutex
	byRcp map[string][]Received // oldest first, at most perRecipient
}

// Received is a message the inbox recorded, and when it was delivered.
type Received struct {
	Message
	SentAt time.Time
}

// NewInbox records into memory and forwards to next; a nil next only records.
func NewInbox(next Sender, perRecipient int) *Inbox {
	if perRecipient <= 0 {
		perRecipient = DefaultInboxSize
	}
	return &Inbox{next: next, perRecipient: perRecipient, Now: time.Now, byRcp: make(map[string][]Received)}
}

// Send forwards m and records it only when forwarding succeeded, so the inbox shows what was really delivered.
func (i *Inbox) Send(ctx context.Context, m Message) error {
	if i.next != nil {
		if err := i.next.Send(ctx, m); err != nil {
			return err
		}
	}
	key := inboxKey(m.To)
	r := Received{Message: m, SentAt: i.Now()}
	i.mu.Lock()
	defer i.mu.Unlock()
	msgs := append(i.byRcp[key], r)
	if over := len(msgs) - i.perRecipient; over > 0 {
		msgs = append([]Received(nil), msgs[over:]...)
	}
	i.byRcp[key] = msgs
	return nil
}

// List returns the messages kept for to, newest first, matching the address case-insensitively.
func (i *Inbox) List(to string) []Received {
	i.mu.Lock()
	defer i.mu.Unlock()
	msgs := i.byRcp[inboxKey(to)]
	out := make([]Received, len(msgs))
	for n, m := range msgs {
		out[len(msgs)-1-n] = m
	}
	return out
}

func inboxKey(to string) string {
	if a, err := mail.ParseAddress(to); err == nil {
		to = a.Address
	}
	return strings.ToLower(strings.TrimSpace(to))
}
