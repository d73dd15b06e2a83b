package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
)

const tenantUsage = `Usage: latch [--config FILE] tenant create --id ID [--name NAME] [settings]
       latch [--config FILE] tenant update --id ID [--name NAME] [settings]
       latch [--config FILE] tenant list
`

func cmdTenant(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		fmt.Fprint(stdout, tenantUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "update" && args[0] != "list") {
		fmt.Fprint(stderr, tenantUsage)
		return usageError("usage: latch tenant create|update|list")
	}
	action := args[0]
	if action == "list" {
		fs := subFlags("tenant list", "Lists every tenant with its settings; the default tenant's come from default_tenant in the configuration.", stdout, stderr)
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			return err
		}
		return withService(ctx, load, stderr, func(svc *auth.Service) error { return listTenants(ctx, svc, stdout) })
	}

	help := "Creates a tenant. Its users sign in with tenantId (or tenantid) set to its id, or under /t/<id>/...;\n" +
		"settings not given take their defaults (the defaults shown below)."
	if action == "update" {
		help = "Changes a tenant: only the flags given change (the defaults shown below are those of a new tenant).\n" +
			"The default tenant's settings come from default_tenant in the configuration; only its name changes here.\n" +
			"Running instances apply a change within 10 seconds."
	}
	fs := subFlags("tenant "+action, help, stdout, stderr)
	id := fs.String("id", "", "the tenant's id: 1 to 63 lower-case letters, digits, '-' or '_' (e.g. acme, 179)")
	input := tenantFlags(fs)
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if strings.TrimSpace(*id) == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError("--id is required")
	}
	in := input()
	by := auth.CommandLine("latch tenant " + action)
	return withService(ctx, load, stderr, func(svc *auth.Service) error {
		if action == "update" {
			t, err := svc.UpdateTenant(ctx, by, *id, in)
			if err != nil {
				return flagError(err)
			}
			fmt.Fprintf(stdout, "updated tenant %s (%s)\n", t.ID, t.Name)
			return nil
		}
		if in.Name == nil {
			in.Name = id
		}
		t, err := svc.CreateTenant(ctx, by, *id, in)
		if err != nil {
			return flagError(err)
		}
		fmt.Fprintf(stdout, "created tenant %s (%s)\n", t.ID, t.Name)
		return nil
	})
}

// tenantFlags defines the flags of a tenant's name and settings; the function it returns, called once
// the flags are parsed, is the input they make: only the flags given are set.
func tenantFlags(fs *flag.FlagSet) func() auth.TenantInput {
	name := fs.String("name", "", "display name (default: the id)")
	secondStep := fs.String("second-step", auth.SecondStepEmailCode, "email_code, or off to answer tokens at the password step")
	rotation := fs.Bool("refresh-rotation", true, "false keeps one refresh token per session")
	appName := fs.String("app-name", "", "product name in this tenant's emails (default mail.app_name)")
	mailFrom := fs.String("mail-from", "", `From of this tenant's emails, e.g. "Acme <no-reply@acme.example>" (default mail.from)`)
	locale := fs.String("locale", "", "language tag of this tenant's emails, e.g. en")
	origins := fs.String("allowed-origins", "", "comma-separated browser origins, e.g. https://app.acme.example")
	routes := fs.String("routes", "", `JSON object answered by the Devii surface as "routes", e.g. {"base":"https://api.acme.example/"}`)
	issuer := fs.String("issuer", "", "iss of this tenant's access tokens (default tokens.issuer)")
	return func() auth.TenantInput {
		var in auth.TenantInput
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "name":
				in.Name = name
			case "second-step":
				in.SecondStep = secondStep
			case "refresh-rotation":
				in.RefreshRotation = rotation
			case "app-name":
				in.AppName = appName
			case "mail-from":
				in.MailFrom = mailFrom
			case "locale":
				in.Locale = locale
			case "allowed-origins":
				list := []string{}
				for o := range strings.SplitSeq(*origins, ",") {
					if o = strings.TrimSpace(o); o != "" {
						list = append(list, o)
					}
				}
				in.AllowedOrigins = &list
			case "routes":
				in.Routes = json.RawMessage(*routes)
			case "issuer":
				in.Issuer = issuer
			}
		})
		return in
	}
}

// withService wires the service from the configuration for one command.
func withService(ctx context.Context, load func() (config.Config, error), stderr io.Writer, run func(*auth.Service) error) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	a, err := app.New(ctx, cfg, quiet, time.Now)
	if err != nil {
		return err
	}
	defer a.Close()
	return run(a.Service)
}

func listTenants(ctx context.Context, svc *auth.Service, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSECOND STEP\tREFRESH ROTATION\tISSUER\tAPP NAME\tMAIL FROM\tCREATED")
	page := auth.PageRequest{Limit: auth.MaxPageSize}
	for {
		res, err := svc.ListTenants(ctx, auth.CommandLine("latch tenant list"), page)
		if err != nil {
			return err
		}
		for _, t := range res.Items {
			st := t.Settings
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\n", t.ID, t.Name, st.SecondStep, st.RefreshRotation,
				orDefault(st.Issuer, "(tokens.issuer)"), orDefault(st.AppName, "(mail.app_name)"), orDefault(st.MailFrom, "(mail.from)"),
				t.CreatedAt.UTC().Format(time.RFC3339))
		}
		if res.NextCursor == "" {
			return tw.Flush()
		}
		page.Cursor = res.NextCursor
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
