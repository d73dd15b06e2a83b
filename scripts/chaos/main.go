// Command chaos is the driver behind scripts/chaos.sh: it runs two Latch instances on the throwaway
// Postgres the script made, keeps refresh chains and registrations going through a sequence of
// faults, and reports what the clients saw. Loopback only; every phase is bounded.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/latch-auth/latch/internal/mail/mimecode"
)

type options struct {
	latch, work, pgdata, pgbin string
	port, chains               int
	asPostgres                 bool
}

const password = "chaos driver password"

func main() {
	var o options
	flag.StringVar(&o.latch, "latch", "", "latch binary")
	flag.StringVar(&o.work, "work", "", "scratch directory")
	flag.StringVar(&o.pgdata, "pgdata", "", "data directory of the throwaway cluster")
	flag.StringVar(&o.pgbin, "pgbin", "", "directory of pg_ctl and psql")
	flag.IntVar(&o.port, "port", 57400, "the cluster's port; the instances and the sink take the next ones")
	flag.IntVar(&o.chains, "chains", 16, "refresh chains")
	flag.BoolVar(&o.asPostgres, "as-postgres", false, "run pg_ctl and psql as the postgres user (when root)")
	flag.Parse()
	if o.latch == "" || o.work == "" || o.pgdata == "" || o.pgbin == "" {
		fmt.Fprintln(os.Stderr, "chaos: run it through scripts/chaos.sh")
		os.Exit(2)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(o options) (bool, error) {
	sink, err := startSink(o.port + 3)
	if err != nil {
		return false, err
	}
	defer sink.close()
	d := &driver{o: o, sink: sink, tally: newTally(), client: &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	d.instances = []*instance{d.newInstance("a", o.port+1), d.newInstance("b", o.port+2)}
	defer func() {
		for _, in := range d.instances {
			in.stop(syscall.SIGTERM)
		}
	}()
	for _, in := range d.instances {
		if err := in.start(); err != nil {
			return false, err
		}
	}

	fmt.Printf("== %d refresh chains (sign-up through the mail sink)\n", o.chains)
	for i := range o.chains {
		tok, err := d.signup(fmt.Sprintf("chain%02d@chaos.test", i), d.instances[i%2])
		if err != nil {
			return false, fmt.Errorf("sign-up of chain %d: %w", i, err)
		}
		d.chains = append(d.chains, &chain{n: i, token: tok})
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for _, c := range d.chains {
		load.Go(func() { d.refreshLoop(ctx, c) })
	}
	load.Go(func() { d.registerLoop(ctx) })

	pg := func(args ...string) error { return d.pg("pg_ctl", append([]string{"-D", o.pgdata, "-w"}, args...)...) }
	phases := []struct {
		name   string
		fault  func() error
		settle time.Duration
	}{
		{"steady", func() error { time.Sleep(5 * time.Second); return nil }, 0},
		{"postgres restart (-m fast)", func() error { return pg("-m", "fast", "restart", "-l", o.pgdata+"/server.log") }, 5 * time.Second},
		{"postgres stopped for 12 s", func() error {
			if err := pg("-m", "fast", "stop"); err != nil {
				return err
			}
			time.Sleep(12 * time.Second)
			return pg("start", "-l", o.pgdata+"/server.log")
		}, 5 * time.Second},
		{"users table locked for 12 s", func() error {
			return d.pg("psql", "-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(o.port), "-U", "postgres", "-d", "latch",
				"-c", "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(12); COMMIT;")
		}, 5 * time.Second},
		{"smtp answers 550", func() error {
			sink.setMode(modeRefuse)
			time.Sleep(6 * time.Second)
			sink.setMode(modeAccept)
			return nil
		}, 4 * time.Second},
		{"smtp hangs after DATA", func() error {
			sink.setMode(modeHang)
			time.Sleep(8 * time.Second)
			sink.setMode(modeAccept)
			return nil
		}, 4 * time.Second},
		{"smtp tarpit (400 ms a reply)", func() error {
			sink.setMode(modeTarpit)
			time.Sleep(8 * time.Second)
			sink.setMode(modeAccept)
			return nil
		}, 4 * time.Second},
		{"smtp accepts DATA after 9.5 s", func() error {
			// The backlog this builds takes longer to send than a lease lasts; the phase ends when
			// it has been sent (or after 3 minutes).
			sink.setMode(modeSlow)
			time.Sleep(10 * time.Second)
			d.tally.enter("smtp accepts DATA after 9.5 s, draining")
			d.pause.Store(true) // no more mail until the backlog is out
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && d.undelivered() > 0; {
				time.Sleep(time.Second)
			}
			d.pause.Store(false)
			sink.setMode(modeAccept)
			return nil
		}, 0},
		{"kill -9 of instance a", func() error {
			d.instances[0].stop(syscall.SIGKILL)
			time.Sleep(2 * time.Second)
			return d.instances[0].start()
		}, 5 * time.Second},
		{"SIGTERM of instance b", func() error {
			d.instances[1].stop(syscall.SIGTERM)
			return d.instances[1].start()
		}, 5 * time.Second},
	}
	for _, p := range phases {
		d.tally.enter(p.name)
		fmt.Printf("== %s %s\n", time.Now().Format("15:04:05"), p.name)
		if err := p.fault(); err != nil {
			stopLoad()
			load.Wait()
			return false, fmt.Errorf("%s: %w", p.name, err)
		}
		if p.settle > 0 {
			d.tally.enter(p.name + ", after")
			time.Sleep(p.settle)
		}
	}
	stopLoad()
	load.Wait()
	d.tally.enter("")

	fmt.Printf("== %s waiting for the outbox to deliver (at most 90 s: a message in flight at the kill waits for its lease)\n", time.Now().Format("15:04:05"))
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && d.undelivered() > 0 {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a second copy still on its way is counted too
	for _, c := range d.chains {
		if c.broken == "" {
			d.finalRefresh(c)
		}
	}
	return d.report(), nil
}

// --- instances --------------------------------------------------------------------------------

type instance struct {
	name string
	port int
	d    *driver
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (d *driver) newInstance(name string, port int) *instance {
	return &instance{name: name, port: port, d: d}
}

func (in *instance) url() string { return fmt.Sprintf("http://127.0.0.1:%d", in.port) }

func (in *instance) start() error {
	o := in.d.o
	// Whatever answers on the port must be this instance, not something left over.
	if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(in.port)); err != nil {
		return fmt.Errorf("instance %s: port %d is taken: %w", in.name, in.port, err)
	} else {
		ln.Close()
	}
	logf, err := os.OpenFile(fmt.Sprintf("%s/latch-%s.log", o.work, in.name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(o.latch, "serve")
	cmd.Dir = o.work // no config.yaml there: the environment is the whole configuration
	cmd.Env = append(os.Environ(),
		"LATCH_SERVER_ADDR=127.0.0.1:"+strconv.Itoa(in.port),
		fmt.Sprintf("LATCH_DATABASE_URL=postgres://postgres@127.0.0.1:%d/latch?sslmode=disable&connect_timeout=2", o.port),
		"LATCH_DATABASE_MAX_OPEN_CONNS=8",
		"LATCH_MAIL_DRIVER=smtp", "LATCH_MAIL_SMTP_HOST=127.0.0.1", "LATCH_MAIL_SMTP_PORT="+strconv.Itoa(o.port+3), "LATCH_MAIL_SMTP_TLS=none",
		"LATCH_MAIL_SMTP_CONNECT_TIMEOUT=2s", "LATCH_MAIL_SMTP_SEND_TIMEOUT=15s",
		"LATCH_SERVER_REQUEST_TIMEOUT=5s", "LATCH_SERVER_SHUTDOWN_TIMEOUT=10s",
		"LATCH_RATELIMIT_IP_PER_MINUTE=0", "LATCH_CODES_RESEND_COOLDOWN=0s", "LATCH_CODES_MAX_PER_HOUR=1000000",
		"LATCH_SECRETS_ENCRYPTION_KEY_FILE="+o.work+"/latch.kek", "LATCH_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()
	for range 200 {
		select {
		case <-done:
			return fmt.Errorf("instance %s exited at start-up (see %s/latch-%s.log)", in.name, o.work, in.name)
		default:
		}
		if r, err := http.Get(in.url() + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("instance %s not ready after 20 s", in.name)
}

// stop signals the instance and waits for it to exit (SIGTERM drains; at most 30 s).
func (in *instance) stop(sig syscall.Signal) {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// --- the clients ------------------------------------------------------------------------------

type driver struct {
	o         options
	sink      *sink
	tally     *tally
	client    *http.Client
	instances []*instance
	chains    []*chain

	pause      atomic.Bool // registrations wait while set
	mu         sync.Mutex
	registered []registration
}

type chain struct {
	n      int
	token  string
	broken string // the answer that ended it
}

type registration struct {
	email string
	phase string
}

type answer struct {
	status int
	code   string
	body   []byte
	err    error
}

func (a answer) key() string {
	switch {
	case a.err != nil:
		return "no answer"
	case a.code != "":
		return strconv.Itoa(a.status) + " " + a.code
	}
	return strconv.Itoa(a.status)
}

func (d *driver) post(in *instance, path string, body any) answer {
	b, _ := json.Marshal(body)
	r, err := d.client.Post(in.url()+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return answer{err: err}
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	a := answer{status: r.StatusCode, body: raw}
	if r.StatusCode >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		json.Unmarshal(raw, &p)
		a.code = p.Code
	}
	return a
}

func (d *driver) signup(email string, in *instance) (string, error) {
	if a := d.post(in, "/v2/auth/register", map[string]string{"email": email, "password": password}); a.status != http.StatusCreated {
		return "", fmt.Errorf("register: %s %s", a.key(), a.body)
	}
	code, err := d.sink.waitCode(email, 10*time.Second)
	if err != nil {
		return "", err
	}
	a := d.post(in, "/v2/auth/validate-register", map[string]string{"email": email, "emailToken": code})
	if a.status != http.StatusOK {
		return "", fmt.Errorf("validate-register: %s %s", a.key(), a.body)
	}
	var p struct {
		RefreshToken string `json:"refreshToken"`
	}
	return p.RefreshToken, json.Unmarshal(a.body, &p)
}

// refreshLoop refreshes a chain as fast as answers come. It retries the same token after anything
// but a 200 or a 401 (a 503, no answer: the rotation may or may not have happened, and the grace
// makes a retry safe), moving to the other instance when one does not answer, as a balancer would.
func (d *driver) refreshLoop(ctx context.Context, c *chain) {
	in := c.n % 2
	for ctx.Err() == nil {
		a := d.post(d.instances[in], "/v2/auth/refresh", map[string]string{"refreshToken": c.token})
		d.tally.add(a)
		switch {
		case a.status == http.StatusOK:
			var p struct {
				RefreshToken string `json:"refreshToken"`
			}
			if json.Unmarshal(a.body, &p) == nil && p.RefreshToken != "" {
				c.token = p.RefreshToken
			}
			continue
		case a.status == http.StatusUnauthorized:
			c.broken = a.key()
			return
		case a.err != nil:
			in = 1 - in
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *driver) finalRefresh(c *chain) {
	for range 20 {
		for _, in := range d.instances {
			a := d.post(in, "/v2/auth/refresh", map[string]string{"refreshToken": c.token})
			switch a.status {
			case http.StatusOK:
				return
			case http.StatusUnauthorized:
				c.broken = a.key() + " (after the faults)"
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.broken = "no 200 after the faults"
}

// registerLoop registers a new address every 150 ms: each 201 owes exactly one email.
func (d *driver) registerLoop(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		for d.pause.Load() && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
		email := fmt.Sprintf("reg%04d@chaos.test", n)
		phase := d.tally.current()
		a := d.post(d.instances[n%2], "/v2/auth/register", map[string]string{"email": email, "password": password})
		d.tally.add(a)
		if a.status == http.StatusCreated {
			d.mu.Lock()
			d.registered = append(d.registered, registration{email: email, phase: phase})
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func (d *driver) undelivered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.registered {
		if d.sink.refusals(r.email) == 0 && len(d.sink.deliveries(r.email)) == 0 {
			n++
		}
	}
	return n
}

// pg runs a Postgres client program of the throwaway cluster.
func (d *driver) pg(program string, args ...string) error {
	path := d.o.pgbin + "/" + program
	var cmd *exec.Cmd
	if d.o.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", program, args, err, out)
	}
	return nil
}

// --- the tally and the report -----------------------------------------------------------------

type tally struct {
	mu      sync.Mutex
	phase   string
	order   []string
	answers map[string]map[string]int
}

func newTally() *tally { return &tally{answers: map[string]map[string]int{}} }

func (t *tally) enter(phase string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = phase
	if phase != "" && t.answers[phase] == nil {
		t.order = append(t.order, phase)
		t.answers[phase] = map[string]int{}
	}
}

func (t *tally) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase
}

func (t *tally) add(a answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.phase != "" {
		t.answers[t.phase][a.key()]++
	}
}

func (d *driver) report() bool {
	fmt.Println()
	fmt.Println("answers by phase (refreshes and registrations):")
	total := map[string]int{}
	for _, phase := range d.tally.order {
		keys := mapKeys(d.tally.answers[phase])
		var parts []string
		for _, k := range keys {
			n := d.tally.answers[phase][k]
			total[k] += n
			parts = append(parts, fmt.Sprintf("%s x %d", k, n))
		}
		fmt.Printf("  %-38s %s\n", phase, strings.Join(parts, ", "))
	}
	var parts []string
	fiveXX := 0
	for _, k := range mapKeys(total) {
		parts = append(parts, fmt.Sprintf("%s x %d", k, total[k]))
		if s, _ := strconv.Atoi(strings.Fields(k + " ")[0]); s >= 500 && s != http.StatusServiceUnavailable {
			fiveXX += total[k]
		}
	}
	fmt.Printf("  %-38s %s\n", "all", strings.Join(parts, ", "))

	d.mu.Lock()
	regs := slices.Clone(d.registered)
	d.mu.Unlock()
	var owed, lost, dup, dupIDs, refused, refusedDelivered, refusedTries int
	dupPhases := map[string]int{}
	for _, r := range regs {
		got := d.sink.deliveries(r.email)
		// A message the server refused for good is owed nothing more; one it later took was retried.
		if tries := d.sink.refusals(r.email); tries > 0 {
			refused++
			if len(got) > 0 {
				refusedDelivered++
			}
			refusedTries = max(refusedTries, tries)
			continue
		}
		owed++
		switch {
		case len(got) == 0:
			lost++
		case len(got) > 1:
			dup++
			dupPhases[r.phase]++
			ids := map[string]bool{}
			for _, m := range got {
				ids[m] = true
			}
			if len(ids) > 1 {
				dupIDs++
			}
		}
	}
	fmt.Println()
	fmt.Printf("emails: %d registrations answered 201 and never refused: %d delivered once, %d lost, %d delivered more than once (%d of them as distinct messages)\n",
		owed, owed-lost-dup, lost, dup, dupIDs)
	for _, phase := range mapKeys(dupPhases) {
		fmt.Printf("        delivered more than once, registered during %q: %d\n", phase, dupPhases[phase])
	}
	fmt.Printf("        %d refused with 550: %d tried again and delivered later, at most %d RCPT tries per message\n",
		refused, refusedDelivered, refusedTries)
	broken := 0
	for _, c := range d.chains {
		if c.broken != "" {
			broken++
			fmt.Printf("chain %02d broken: %s\n", c.n, c.broken)
		}
	}
	fmt.Printf("refresh chains: %d, broken %d\n", len(d.chains), broken)
	ok := fiveXX == 0 && lost == 0 && dup == 0 && broken == 0
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Printf("\n%s: 5xx other than 503: %d; lost emails: %d; duplicated emails: %d; broken chains: %d\n", verdict, fiveXX, lost, dup, broken)
	return ok
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- the mail sink ----------------------------------------------------------------------------

type mode int32

const (
	modeAccept mode = iota
	modeRefuse      // 550 to every RCPT TO
	modeHang        // DATA read, then no answer for longer than the sender waits
	modeTarpit      // every reply 400 ms late
	modeSlow        // DATA accepted after 9.5 s: a slow relay, slower than a batch's lease allows
)

type sink struct {
	srv  *smtp.Server
	mode atomic.Int32

	mu       sync.Mutex
	arrived  map[string][]string // recipient -> Message-IDs of the copies accepted
	codes    map[string]string   // recipient -> the newest code
	refused  map[string]int      // recipient -> RCPT TO answered 550
	notified chan struct{}
}

func startSink(port int) (*sink, error) {
	s := &sink{arrived: map[string][]string{}, codes: map[string]string{}, refused: map[string]int{}, notified: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "chaos.localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	go s.srv.Serve(tarpitListener{ln, s})
	return s, nil
}

func (s *sink) close()                                      { s.srv.Close() }
func (s *sink) setMode(m mode)                              { s.mode.Store(int32(m)) }
func (s *sink) current() mode                               { return mode(s.mode.Load()) }
func (s *sink) refusing() bool                              { return s.current() == modeRefuse }
func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

func (s *sink) deliveries(to string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrived[to])
}

func (s *sink) refusals(to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[to]
}

func (s *sink) waitCode(to string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		code, ok := s.codes[to]
		wait := s.notified
		s.mu.Unlock()
		if ok {
			return code, nil
		}
		select {
		case <-wait:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("no code for %s within %s", to, timeout)
}

type sinkSession struct {
	s  *sink
	to []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Reset()                               { ss.to = nil }
func (ss *sinkSession) Logout() error                        { return nil }

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.refusing() {
		ss.s.mu.Lock()
		ss.s.refused[strings.ToLower(to)]++
		ss.s.mu.Unlock()
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "chaos: no such mailbox"}
	}
	ss.to = append(ss.to, strings.ToLower(to))
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch ss.s.current() {
	case modeHang:
		// Longer than the sender waits (mail.smtp.send_timeout 15 s): it gives up, and the message
		// is not taken.
		time.Sleep(20 * time.Second)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "chaos: hung"}
	case modeSlow:
		time.Sleep(9500 * time.Millisecond)
	}
	msg, err := mimecode.Decode(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	code, _ := msg.Code()
	ss.s.mu.Lock()
	for _, to := range ss.to {
		ss.s.arrived[to] = append(ss.s.arrived[to], msg.MessageID)
		if code != "" {
			ss.s.codes[to] = code
		}
	}
	close(ss.s.notified)
	ss.s.notified = make(chan struct{})
	ss.s.mu.Unlock()
	return nil
}

// tarpitListener delays every reply the sink writes while the sink is in tarpit mode.
type tarpitListener struct {
	net.Listener
	s *sink
}

func (l tarpitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tarpitConn{c, l.s}, nil
}

type tarpitConn struct {
	net.Conn
	s *sink
}

func (c tarpitConn) Write(p []byte) (int, error) {
	if c.s.current() == modeTarpit {
		time.Sleep(400 * time.Millisecond)
	}
	return c.Conn.Write(p)
}
