package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
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

// codeFromMessage finds the six-digit code: in the plain-text part first, then the subject, then the
// HTML part (last, because style attributes hold six-digit colours).
func codeFromMessage(raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("loadgen: parse email: %w", err)
	}
	var parts bodies
	if err := parts.collect(textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		return "", err
	}
	var words mime.WordDecoder
	subject, err := words.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = ""
	}
	for _, text := range []string{parts.plain, subject, parts.html} {
		if code, ok := findCode(text); ok {
			return code, nil
		}
	}
	return "", ErrNoCode
}

type bodies struct{ plain, html string }

// collect walks a MIME entity and keeps the first text/plain and text/html bodies, decoded.
func (b *bodies) collect(h textproto.MIMEHeader, body io.Reader) error {
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("loadgen: content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		// Raw parts: the transfer encoding is undone below, the same way for every part.
		parts := multipart.NewReader(body, params["boundary"])
		for {
			p, err := parts.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("loadgen: multipart: %w", err)
			}
			if err := b.collect(p.Header, p); err != nil {
				return err
			}
		}
	}
	var dst *string
	switch mediaType {
	case "text/plain":
		dst = &b.plain
	case "text/html":
		dst = &b.html
	default:
		return nil
	}
	if *dst != "" {
		return nil
	}
	var r io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips the line breaks itself
	case "", "7bit", "8bit", "binary":
		r = body
	default:
		return fmt.Errorf("loadgen: unsupported transfer encoding %q", enc)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("loadgen: decode %s: %w", mediaType, err)
	}
	*dst = string(text)
	return nil
}

// findCode returns the first word made of exactly six digits. Words are split at anything that
// cannot be part of an email address, so digits inside the recipient's address never count.
func findCode(text string) (string, bool) {
	words := strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("@._+-", r))
	})
	for _, w := range words {
		w = strings.TrimRight(w, ".")
		if len(w) == 6 && strings.Trim(w, "0123456789") == "" {
			return w, true
		}
	}
	return "", false
}
