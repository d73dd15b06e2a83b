// Package mailtest runs a real SMTP server in-process, on 127.0.0.1, for tests of any package that sends mail.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/latch-auth/latch/internal/mail/mimecode"
)

// Received is one message the server accepted.
type Received struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Data []byte   // the raw message
	// MessageID, Subject, Text and HTML are decoded from Data; Text and HTML are empty when the message
	// has no such part.
	MessageID string
	Subject   string
	Text      string
	HTML      string
	TLS       bool // the message travelled over TLS (implicit or STARTTLS)
}

// ErrNoMessage is returned by WaitFor when no message arrives in time.
var ErrNoMessage = errors.New("mailtest: no message arrived")

// Option configures NewServer.
type Option func(*Server)

// WithAuth requires AUTH PLAIN with these credentials before MAIL FROM.
func WithAuth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass, s.requireAuth = user, pass, true }
}

// WithTLS gives the server a self-signed certificate and offers STARTTLS; TLSConfig returns a client config that
// trusts it.
func WithTLS() Option {
	return func(s *Server) { s.useTLS = true }
}

// WithImplicitTLS makes the listener speak TLS from the first byte (port-465 style), with the same certificate as
// WithTLS.
func WithImplicitTLS() Option {
	return func(s *Server) { s.useTLS, s.implicitTLS = true, true }
}

// Server is an SMTP server that keeps every message it accepts.
type Server struct {
	user, pass  string
	requireAuth bool
	useTLS      bool
	implicitTLS bool
	serverTLS   *tls.Config
	clientTLS   *tls.Config

	runMu   sync.Mutex // guards the running server across Stop and Start
	port    int
	smtp    *smtp.Server
	ln      net.Listener
	serving chan struct{} // closed when the current Serve returns

	mu       sync.Mutex
	refuse   *smtp.SMTPError // answered to every RCPT TO while set
	delay    time.Duration   // before answering the end of DATA
	messages []Received
	unread   map[string][]int // per lower-cased recipient, indexes into messages not yet returned by WaitFor
	arrived  chan struct{}    // closed and replaced whenever a message arrives
}

// NewServer starts a server on 127.0.0.1 with a free port; it is stopped in t.Cleanup.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{unread: make(map[string][]int), arrived: make(chan struct{})}
	for _, opt := range opts {
		opt(s)
	}
	if s.useTLS {
		var err error
		if s.serverTLS, s.clientTLS, err = selfSignedTLS(); err != nil {
			t.Fatalf("mailtest: certificate: %v", err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatalf("mailtest: start: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Host is the address to connect to.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the listening port; it stays the same across Stop and Start.
func (s *Server) Port() int {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	return s.port
}

// TLSConfig returns a client configuration trusting the server's certificate, or nil without WithTLS or
// WithImplicitTLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Start listens again, on the same port as before (on a free one the first time). Starting a running server is a
// no-op.
func (s *Server) Start() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.smtp != nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.Host(), fmt.Sprint(s.port)))
	if err != nil {
		return err
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	if s.implicitTLS {
		ln = tls.NewListener(ln, s.serverTLS)
	}

	srv := smtp.NewServer(&backend{s})
	srv.Domain = "mailtest.localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.TLSConfig = s.serverTLS
	// Connections cut by Stop are expected; their errors would only be noise.
	srv.ErrorLog = log.New(io.Discard, "", 0)

	serving := make(chan struct{})
	go func() {
		defer close(serving)
		_ = srv.Serve(ln)
	}()
	s.smtp, s.ln, s.serving = srv, ln, serving
	return nil
}

// Stop closes the listener and every open connection, as if the SMTP server went down. Messages already received
// are kept.
func (s *Server) Stop() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.smtp == nil {
		return
	}
	_ = s.smtp.Close()
	// smtp.Server.Close only knows the listener once Serve has registered it, which may not have happened yet.
	_ = s.ln.Close()
	<-s.serving
	s.smtp, s.ln, s.serving = nil, nil, nil
}

// Refuse makes the server answer every RCPT TO with code (550: no such mailbox, for good; 450: try
// later) until called with 0.
func (s *Server) Refuse(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.refuse = nil
		return
	}
	s.refuse = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "mailtest: mailbox unavailable"}
}

// DelayData makes the server wait d before it accepts a message's DATA: a slow relay.
func (s *Server) DelayData(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// WaitFor returns the oldest message to the address (case-insensitive) that no earlier WaitFor returned, waiting
// up to timeout for one to arrive. Each message is returned once per recipient, so a test can wait for the
// first code email, then for the next one.
func (s *Server) WaitFor(to string, timeout time.Duration) (Received, error) {
	key := strings.ToLower(to)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if q := s.unread[key]; len(q) > 0 {
			s.unread[key] = q[1:]
			m := s.messages[q[0]]
			s.mu.Unlock()
			return m, nil
		}
		arrived := s.arrived
		s.mu.Unlock()

		select {
		case <-arrived:
		case <-timer.C:
			return Received{}, fmt.Errorf("%w: to %s within %s", ErrNoMessage, to, timeout)
		}
	}
}

func (s *Server) record(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := len(s.messages)
	s.messages = append(s.messages, m)
	for _, rcpt := range m.To {
		key := strings.ToLower(rcpt)
		s.unread[key] = append(s.unread[key], idx)
	}
	close(s.arrived)
	s.arrived = make(chan struct{})
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, tls: isTLS}, nil
}

type session struct {
	s      *Server
	tls    bool
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if !ss.s.requireAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !ss.s.requireAuth || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return smtp.ErrAuthFailed
		}
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.requireAuth && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	refuse := ss.s.refuse
	ss.s.mu.Unlock()
	if refuse != nil {
		return refuse
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	delay := ss.s.delay
	ss.s.mu.Unlock()
	time.Sleep(delay)
	msg, err := mimecode.Decode(raw)
	if err != nil {
		// Tests want to hear about a malformed message, not have it silently dropped.
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	ss.s.record(Received{From: ss.from, To: append([]string(nil), ss.to...), Data: raw, TLS: ss.tls,
		MessageID: msg.MessageID, Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

func selfSignedTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
