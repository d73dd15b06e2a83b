package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/latch-auth/latch/internal/mail/mimecode"
)

// Errors of waiting for a code email.
var (
	ErrMailTimeout = errors.New("loadgen: no code email arrived in time")
	ErrNoCode      = errors.New("loadgen: email without a six-digit code")
)

const maxMessageBytes = 1 << 20

// Mail is a code email as the listener received it.
type Mail struct {
	Code    string
	Arrived time.Time // when the whole message had been received
	Err     error     // ErrNoCode, or why the message could not be read
}

// Mailbox is the generator's own SMTP server: the server under test sends its code emails here, and
// each worker waits for the mail to the addresses it owns. Only addresses announced with expect are
// kept; mail to any other address is accepted and dropped, so memory stays bounded.
type Mailbox struct {
	ln   net.Listener
	srv  *smtp.Server
	done chan struct{}

	mu    sync.Mutex
	boxes map[string]chan Mail

	dropped atomic.Uint64
}

// ListenSMTP starts the listener on a loopback address (port 0 picks a free port).
func ListenSMTP(addr string) (*Mailbox, error) {
	if err := checkListenAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &Mailbox{ln: ln, done: make(chan struct{}), boxes: make(map[string]chan Mail)}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{box: m}, nil }))
	m.srv.Domain = "latch-bench.localhost"
	m.srv.ReadTimeout, m.srv.WriteTimeout = 30*time.Second, 30*time.Second
	m.srv.MaxMessageBytes = maxMessageBytes
	m.srv.MaxRecipients = 10
	m.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		defer close(m.done)
		_ = m.srv.Serve(ln)
	}()
	return m, nil
}

// Addr is the address the listener is bound to.
func (m *Mailbox) Addr() *net.TCPAddr { return m.ln.Addr().(*net.TCPAddr) }

// Port is the port to configure as the server's mail.smtp.port.
func (m *Mailbox) Port() int { return m.Addr().Port }

// Dropped counts messages to addresses no worker was waiting for, or that overflowed a box.
func (m *Mailbox) Dropped() uint64 { return m.dropped.Load() }

// Close stops the listener and ends open SMTP sessions.
func (m *Mailbox) Close() error {
	err := m.srv.Close()
	<-m.done
	return err
}

// expect makes the mailbox keep mail to addr.
func (m *Mailbox) expect(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := normalizeAddr(addr)
	if _, ok := m.boxes[key]; !ok {
		m.boxes[key] = make(chan Mail, 4)
	}
}

func (m *Mailbox) box(addr string) chan Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boxes[normalizeAddr(addr)]
}

// drain throws away mail to addr that nobody took: a late email from an abandoned attempt must not be
// mistaken for the answer to the next one.
func (m *Mailbox) drain(addr string) {
	b := m.box(addr)
	for {
		select {
		case <-b:
		default:
			return
		}
	}
}

// next waits for the next mail to an expected address.
func (m *Mailbox) next(ctx context.Context, addr string, timeout time.Duration) (Mail, error) {
	b := m.box(addr)
	if b == nil {
		return Mail{}, fmt.Errorf("loadgen: %s is not an expected address", addr)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case got := <-b:
		return got, got.Err
	case <-t.C:
		return Mail{}, ErrMailTimeout
	case <-ctx.Done():
		return Mail{}, ctx.Err()
	}
}

func (m *Mailbox) deliver(to []string, got Mail) {
	for _, addr := range to {
		b := m.box(addr)
		if b == nil {
			m.dropped.Add(1)
			continue
		}
		select {
		case b <- got:
		default:
			m.dropped.Add(1)
		}
	}
}

func normalizeAddr(addr string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
}

type smtpSession struct {
	box *Mailbox
	to  []string
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxMessageBytes+1))
	if err != nil {
		return err
	}
	got := Mail{Arrived: time.Now()}
	got.Code, got.Err = codeFromMessage(raw)
	s.box.deliver(s.to, got)
	return nil
}

func (s *smtpSession) Reset() { s.to = nil }

func (s *smtpSession) Logout() error { return nil }

// codeFromMessage reads the code with the decoder and rule of the tests' SMTP server, so a template
// change that hides the code from one hides it from both.
func codeFromMessage(raw []byte) (string, error) {
	msg, err := mimecode.Decode(raw)
	if err != nil {
		return "", err
	}
	code, ok := msg.Code()
	if !ok {
		return "", ErrNoCode
	}
	return code, nil
}
