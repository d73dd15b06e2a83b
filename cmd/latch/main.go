// Command latch is the Latch login service: `latch serve` runs it; the other subcommands migrate the
// database, rotate keys and manage tenants, users and admin API keys. The load generator is a separate command, cmd/latch-bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/logging"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "latch:", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

type usageError string

func (u usageError) Error() string { return string(u) }

const usage = `Latch: two-step, email-verified login with rotating refresh tokens.

Usage:
  latch [--config FILE] <command> [flags]

Commands:
  serve                 run the HTTP service (migrates first unless database.auto_migrate is false)
  migrate [up|status]   apply pending migrations, or list them with their state
  keys rotate           make a new active signing key; old tokens stay valid until they expire
  user create           create a user: --email, --password [--tenant ID] (verified, active)
  user list             list users: [--tenant ID] [--email-prefix P] [--disabled true|false] [--limit N]
  user disable|enable   disable a user and end their sessions, or enable them: --email [--tenant ID]
  user set-role         set a user's role (the role claim): --email, --role [--tenant ID]
  user delete           erase a user and everything of theirs: --email [--tenant ID]
  tenant create         create a tenant: --id, --name and its settings (see latch tenant create --help)
  tenant update         change a tenant's name or settings: --id and the flags to change
  tenant list           list the tenants with their settings
  admin-key create      make an admin API key: --name [--tenant ID]; printed once, on the last line
  admin-key list        list the admin API keys (never their secrets)
  admin-key revoke      revoke an admin API key at once: --id
  healthcheck           exit 0 when the server on this machine answers /healthz (for container checks)
  outbox list           list queued and sent mail, or with --dead the mail refused for good
  version               print the version

Global flags:
  --config FILE         configuration file (default config.yaml; optional when it is the default)

Every configuration key can be set by environment: LATCH_ + the key path in upper case with _,
e.g. LATCH_DATABASE_URL, LATCH_MAIL_DRIVER, LATCH_SERVER_ADDR; an item of a list of sections by
its index, e.g. LATCH_WEBHOOKS_0_SECRET. See config.yaml for every key.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("latch", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {} // printed below, to stdout when asked for and to stderr after a mistake
	cfgPath := global.String("config", "config.yaml", "configuration file")
	if err := global.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return err
	} else if err != nil {
		fmt.Fprint(stderr, usage)
		return usageError(err.Error())
	}
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgRequired := false
	global.Visit(func(f *flag.Flag) { cfgRequired = cfgRequired || f.Name == "config" })
	rest := global.Args()
	if len(rest) == 0 {
		global.Usage()
		return usageError("no command given")
	}
	cmd, rest := rest[0], rest[1:]
	load := func() (config.Config, error) {
		if cmd != "serve" { // serve logs these through its logger
			for _, name := range config.UnknownEnv(os.Environ()) {
				fmt.Fprintf(stderr, "latch: warning: %s\n", unknownEnvMessage(name))
			}
		}
		return config.Load(*cfgPath, cfgRequired, os.Environ())
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, load, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, load, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, load, stdout, stderr)
	case "user":
		return cmdUser(ctx, rest, load, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, load, stdout, stderr)
	case "tenant":
		return cmdTenant(ctx, rest, load, stdout, stderr)
	case "outbox":
		return cmdOutbox(ctx, rest, load, stdout, stderr)
	case "admin-key":
		return cmdAdminKey(ctx, rest, load, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "latch", version)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	global.Usage()
	return usageError(fmt.Sprintf("unknown command %q", cmd))
}

// unknownEnvMessage says that a LATCH_ variable sets nothing, and which key it probably meant.
func unknownEnvMessage(name string) string {
	msg := name + " is not a configuration key and is ignored"
	if near, ok := config.NearestEnv(name); ok {
		msg += " (did you mean " + near + "?)"
	}
	return msg
}

func isHelpFlag(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// subFlags is a subcommand's flag set. Its usage goes to stderr after a mistake and to stdout when
// asked for (see parseFlags).
func subFlags(name, help string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latch [--config FILE] %s\n\n%s\n", name, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's arguments. A help flag anywhere among them, even after an action
// word ("migrate up --help"), prints the usage to stdout and answers flag.ErrHelp: asking for help
// never runs the command.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelpFlag(a) {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	return nil
}

func cmdServe(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("serve", "Runs the HTTP service on server.addr until SIGINT or SIGTERM, then drains in-flight requests.\n"+
		"Unless GOMAXPROCS is set, it runs with one Go processor per CPU plus one per password-hashing slot,\n"+
		"so hashes do not hold up other requests.", stdout, stderr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	logOut := logging.NewBuffered(stderr, 200*time.Millisecond)
	defer logOut.Close()
	log := logging.New(logOut, cfg.Log.Format, cfg.Log.Level)
	for _, name := range config.UnknownEnv(os.Environ()) {
		log.Warn(unknownEnvMessage(name), "name", name)
	}
	slots := app.HashSlots(cfg)
	procs := addHashingProcs(slots)
	a, err := app.New(ctx, cfg, log, time.Now, app.WithLogSync(logOut.Flush))
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("starting latch", "version", version, "addr", cfg.Server.Addr, "database", redactedDB(cfg),
		"mail_driver", cfg.Mail.Driver, "algorithm", cfg.Tokens.Algorithm, "sandbox", cfg.Sandbox.Enabled,
		"gomaxprocs", procs, "hash_slots", slots)
	if cfg.Sandbox.Enabled {
		log.Warn("SANDBOX IS ENABLED: GET /v2/sandbox/emails shows every email, codes included. Never enable it in production.")
		if cfg.Sandbox.AllowRemote {
			log.Warn("the sandbox inbox answers clients on other machines (sandbox.allow_remote)")
		} else {
			log.Info("the sandbox inbox answers only clients on this machine; set sandbox.allow_remote to change that")
		}
	}

	if cfg.Server.PprofAddr != "" {
		go servePprof(ctx, cfg.Server.PprofAddr, log)
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("server.addr: %w", err)
	}
	ln = httpapi.WrapListener(ln)
	// The write timeout outlasts the request deadline, so a request that hit its deadline still gets
	// its 503 rather than a cut connection.
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: max(30*time.Second, cfg.Server.RequestTimeout+10*time.Second), IdleTimeout: 120 * time.Second}
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	if addr := cfg.Server.InternalAddr; addr != "" {
		iln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server.internal_addr: %w", err)
		}
		internal := &http.Server{Handler: a.InternalHandler(), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, internal)
		go func() { errc <- internal.Serve(httpapi.WrapListener(iln)) }()
		_, adminInternal := cfg.AdminListeners()
		log.Info("internal listener", "addr", iln.Addr().String(), "admin_api", adminInternal)
	}
	bgCtx, stopBg := context.WithCancel(context.Background())
	waitBg := a.RunBackground(bgCtx)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		for _, s := range servers {
			s.Close()
		}
		stopBg()
		waitBg()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	for _, s := range servers[1:] {
		s.Shutdown(shutCtx)
	}
	err = srv.Shutdown(shutCtx)
	stopBg()
	waitBg()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func cmdMigrate(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("migrate [up|status]", "up (the default) applies pending migrations; status lists every migration and whether it is applied.", stdout, stderr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	action := "up"
	if fs.NArg() > 0 {
		action = fs.Arg(0)
	}
	if action != "up" && action != "status" {
		fs.Usage()
		return usageError(fmt.Sprintf("unknown migrate action %q", action))
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg, time.Now, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if action == "up" {
		n, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
		return nil
	}
	list, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, m := range list {
		state, at := "pending", ""
		if m.Applied {
			state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	return tw.Flush()
}

// redactedDB is the database URL safe to log.
func redactedDB(cfg config.Config) string { return cfg.Redacted().Database.URL }

// servePprof serves the runtime profiles on a loopback address (validated by config) until ctx ends.
func servePprof(ctx context.Context, addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	log.Warn("pprof enabled", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("pprof server", "err", err)
	}
}
