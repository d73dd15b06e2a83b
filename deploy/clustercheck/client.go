package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// loopbackOnly refuses any address outside 127.0.0.0/8 and ::1: this program drives a cluster on
// this machine and nothing else.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("clustercheck: %s is not a loopback address", address)
	}
	return nil
}

func checkLoopbackURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return "", fmt.Errorf("clustercheck: %q: want an http:// URL", raw)
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("clustercheck: %q is not on loopback", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// api talks to one base URL over a keep-alive pool.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(base string, conns int, timeout time.Duration) *api {
	d := &net.Dialer{Timeout: 2 * time.Second, Control: loopbackOnly}
	return &api{base: base, hc: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConns: conns, MaxIdleConnsPerHost: conns,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// answer is one HTTP exchange: Status 0 means no answer (refused, reset, timed out).
type answer struct {
	Status     int
	Code       string // the problem+json code of an error answer
	RetryAfter string
	Body       []byte
	Err        error
}

// outcome is the key answers are counted under: "200", "401 refresh_token_reused", "no answer".
func (a answer) outcome() string {
	if a.Status == 0 {
		return "no answer"
	}
	if a.Code != "" {
		return fmt.Sprintf("%d %s", a.Status, a.Code)
	}
	return fmt.Sprint(a.Status)
}

func (c *api) post(ctx context.Context, path string, body any) answer {
	b, err := json.Marshal(body)
	if err != nil {
		return answer{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer res.Body.Close()
	a := answer{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After")}
	a.Body, a.Err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if a.Err != nil {
		return answer{Err: a.Err}
	}
	if res.StatusCode >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(a.Body, &p)
		a.Code = p.Code
	}
	return a
}

func (c *api) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
	if err != nil {
		return false
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

func (a answer) pair() (tokenPair, error) {
	var p tokenPair
	if a.Status != http.StatusOK {
		return p, fmt.Errorf("answered %s", a.outcome())
	}
	if err := json.Unmarshal(a.Body, &p); err != nil || p.RefreshToken == "" {
		return p, fmt.Errorf("token pair did not decode: %v", err)
	}
	return p, nil
}

// sink is an SMTP server on loopback that keeps the six-digit code of every email, by recipient:
// the cluster's instances send their code emails here (mail.smtp.port = the sink port).
type sink struct {
	ln  net.Listener
	srv *smtp.Server

	mu     sync.Mutex
	codes  map[string][]string
	notify chan struct{}
}

func listenSink(addr string) (*sink, error) {
	if err := loopbackOnly("", addr, nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail sink on %s: %w (is another sink or the load generator running?)", addr, err)
	}
	s := &sink{ln: ln, codes: make(map[string][]string), notify: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "clustercheck.localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) Close() error { return s.srv.Close() }

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func (s *sink) deliver(to []string, raw []byte) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return
	}
	var dec mime.WordDecoder
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	code := sixDigits.FindString(subject)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, addr := range to {
		addr = strings.ToLower(strings.Trim(addr, "<> "))
		s.codes[addr] = append(s.codes[addr], code) // "" for a mail without a code (a notice)
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// count is how many emails reached addr so far.
func (s *sink) count(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.codes[strings.ToLower(addr)])
}

// code waits for the email number n (from 0) to addr and returns its code.
func (s *sink) code(ctx context.Context, addr string, n int) (string, error) {
	addr = strings.ToLower(addr)
	for {
		s.mu.Lock()
		got, wake := s.codes[addr], s.notify
		s.mu.Unlock()
		if len(got) > n {
			if got[n] == "" {
				return "", fmt.Errorf("email %d to %s has no code", n, addr)
			}
			return got[n], nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return "", fmt.Errorf("no email %d to %s: %w", n, addr, ctx.Err())
		}
	}
}

type sinkSession struct {
	s  *sink
	to []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	ss.s.deliver(ss.to, raw)
	return nil
}
func (ss *sinkSession) Reset()        { ss.to = nil }
func (ss *sinkSession) Logout() error { return nil }

// signup registers email and validates it with the emailed code: a user with one session.
func signup(ctx context.Context, c *api, mb *sink, email, password string) (tokenPair, error) {
	n := mb.count(email)
	if a := c.post(ctx, "/v2/auth/register", map[string]string{"email": email, "password": password}); a.Status != http.StatusCreated {
		return tokenPair{}, fmt.Errorf("register %s: %s %v", email, a.outcome(), a.Err)
	}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	code, err := mb.code(wait, email, n)
	if err != nil {
		return tokenPair{}, err
	}
	a := c.post(ctx, "/v2/auth/validate-register", map[string]string{"email": email, "emailToken": code})
	p, err := a.pair()
	if err != nil {
		return p, fmt.Errorf("validate-register %s: %w", email, err)
	}
	return p, nil
}

var errCheck = errors.New("check failed")
