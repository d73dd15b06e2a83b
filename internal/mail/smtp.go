package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strings"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which the server must offer (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no encryption at all: only for a relay on a trusted network
)

// Timeouts used when SMTPConfig leaves them at zero.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultSendTimeout    = 30 * time.Second
)

// ErrInvalidConfig wraps every error NewSMTP returns for a bad SMTPConfig.
var ErrInvalidConfig = errors.New("mail: invalid smtp config")

// SMTPConfig configures the SMTP driver.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // AUTH is used only when set
	Password string
	TLS      string // TLSStartTLS (default when empty), TLSImplicit or TLSNone
	From     string // "Name <address>" or a bare address
	// ConnectTimeout bounds connecting, up to the server's greeting.
	ConnectTimeout time.Duration
	// SendTimeout bounds a whole Send, connection included. Within it the server may take as long as
	// it likes to accept the message: giving up on a slow answer to DATA would send the message again
	// once the server had taken it.
	SendTimeout time.Duration
	// TLSConfig replaces the default client TLS configuration (tests use it to trust a self-signed certificate).
	// An empty ServerName is filled with Host.
	TLSConfig *tls.Config
}

// SMTP sends through an SMTP server with go-mail, one connection per Send.
type SMTP struct {
	cfg       SMTPConfig
	from      *netmail.Address
	msgIDHost string
}

// NewSMTP checks cfg and fills its defaults; it does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("%w: host is empty", ErrInvalidConfig)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d out of range", ErrInvalidConfig, cfg.Port)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("%w: tls %q is not one of starttls, tls, none", ErrInvalidConfig, cfg.TLS)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, fmt.Errorf("%w: password set without username", ErrInvalidConfig)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("%w: from %q: %v", ErrInvalidConfig, cfg.From, err)
	}
	if cfg.ConnectTimeout < 0 || cfg.SendTimeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout", ErrInvalidConfig)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.TLSConfig != nil {
		cfg.TLSConfig = cfg.TLSConfig.Clone()
	} else {
		cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.TLSConfig.ServerName == "" {
		cfg.TLSConfig.ServerName = cfg.Host
	}

	s := &SMTP{cfg: cfg, from: from, msgIDHost: "localhost"}
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 && at < len(from.Address)-1 {
		s.msgIDHost = from.Address[at+1:]
	}
	// Build one client now so that go-mail's own option checks fail at start-up, not at the first email.
	if _, err := s.client(context.Background()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return s, nil
}

// client builds a go-mail client whose connections are closed as soon as ctx ends: go-mail itself only uses the
// context while dialling, and a Send stuck in DATA would otherwise outlive its caller.
func (s *SMTP) client(ctx context.Context) (*gomail.Client, error) {
	cfg := s.cfg
	dial := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		dialCtx, cancel := context.WithTimeout(dialCtx, cfg.ConnectTimeout)
		defer cancel()
		var d net.Dialer
		raw, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		var conn net.Conn = &greetingConn{Conn: raw, until: time.Now().Add(cfg.ConnectTimeout)}
		if cfg.TLS == TLSImplicit {
			// A *tls.Conn, so go-mail's SMTP client knows the link is encrypted.
			tc := tls.Client(conn, cfg.TLSConfig)
			if err := tc.HandshakeContext(dialCtx); err != nil {
				raw.Close()
				return nil, err
			}
			conn = tc
		}
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}

	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		// go-mail's timeout is one deadline for a whole message's transaction; greetingConn holds
		// the set-up to ConnectTimeout.
		gomail.WithTimeout(cfg.SendTimeout),
		gomail.WithTLSConfig(cfg.TLSConfig),
		gomail.WithDialContextFunc(dial),
		// One message per fresh connection: the NOOP probe and the RSET after the message are wasted round trips.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	switch cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		// PLAIN or LOGIN, whichever the server offers; anything else falls back to go-mail's discovery.
		// go-mail does not count our own TLS dial as encrypted, so the plain mechanisms are named explicitly;
		// over TLSNone the operator has chosen an unencrypted link, hence the NOENC variants.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if cfg.TLS == TLSNone {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(mechs...),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password),
		)
	}
	return gomail.NewClient(cfg.Host, opts...)
}

// Send delivers m as multipart/alternative (text, then HTML when present) over a new connection.
// It returns nil once the server accepted the message (even if the connection then breaks), and an error when it
// did not, including when ctx ends or SendTimeout passes first.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()

	msg, err := s.build(m)
	if err != nil {
		return err
	}
	client, err := s.client(ctx)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if msg.IsDelivered() {
			// The server accepted the DATA; only the goodbye failed. Reporting an error would make the outbox
			// send the email again.
			return nil
		}
		if ctxErr := contextEnded(ctx); ctxErr != nil {
			return fmt.Errorf("smtp send to %s:%d: %w: %w", s.cfg.Host, s.cfg.Port, ctxErr, err)
		}
		err = fmt.Errorf("smtp send to %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
		if refusedForGood(err) {
			return permanent(err)
		}
		return err
	}
	return nil
}

// contextEnded is ctx.Err(), also counting a deadline that has passed but whose timer has not fired yet:
// go-mail's connection deadline and ctx's deadline are the same instant, and on a loaded machine the
// read can fail before the context's timer runs.
func contextEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// greetingConn bounds every deadline set on the connection by until, the end of the connect timeout,
// until the server has said its first word; after that the deadlines are go-mail's (SendTimeout).
// Together: a silent server is given up on after ConnectTimeout, a slow one is waited for.
type greetingConn struct {
	net.Conn
	until   time.Time
	greeted atomic.Bool
}

func (c *greetingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.greeted.Store(true)
	}
	return n, err
}

func (c *greetingConn) bound(t time.Time) time.Time {
	if !c.greeted.Load() && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

func (c *greetingConn) SetDeadline(t time.Time) error     { return c.Conn.SetDeadline(c.bound(t)) }
func (c *greetingConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.bound(t)) }

// refusedForGood reports a 5xx reply to the message's own transaction (MAIL FROM, RCPT TO, DATA or
// its end): the server will not take this message, however often it is sent. A 5xx to AUTH or a
// connection that fails says nothing about the message and is retried.
func refusedForGood(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) || se.ErrorCode() < 500 || se.ErrorCode() > 599 {
		return false
	}
	switch se.Reason {
	case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose, gomail.ErrWriteContent:
		return true
	}
	return false
}

func (s *SMTP) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from := s.from
	if m.From != "" {
		a, err := netmail.ParseAddress(m.From)
		if err != nil {
			return nil, fmt.Errorf("smtp: from %q: %w", m.From, err)
		}
		from = a
	}
	msg.FromMailAddress(from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("smtp: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	id := m.ID
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	msg.SetMessageIDWithValue(id + "@" + s.msgIDHost)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
