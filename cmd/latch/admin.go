package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
)

func cmdKeys(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("keys rotate", "Creates a new active signing key of tokens.algorithm in the database and retires the previous one,\n"+
		"which stays in the JWKS and keeps verifying until the tokens it signed expire. Running instances\npick the new key up within a minute.", stdout, stderr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "rotate" {
		fs.Usage()
		return usageError("usage: latch keys rotate")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := app.OpenSealedStore(ctx, cfg, time.Now, cfg.Database.AutoMigrate, log)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := app.LoadKeys(ctx, cfg, st, nil, time.Now, log)
	if err != nil {
		return err
	}
	k, err := keys.Rotate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new active key %s (%s)\n", k.ID, k.Alg)
	return nil
}

func cmdUser(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	const userUsage = "Usage: latch [--config FILE] user create --email E --password P [--tenant ID]\n       latch [--config FILE] user disable --email E [--tenant ID]\n"
	if len(args) > 0 && isHelpFlag(args[0]) {
		fmt.Fprint(stdout, userUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "disable") {
		fmt.Fprint(stderr, userUsage)
		return usageError("usage: latch user create|disable")
	}
	action := args[0]
	help := "Creates an active user whose email counts as verified (the operator vouches for it)."
	if action == "disable" {
		help = "Disables a user: they can no longer log in or refresh, and every session ends now."
	}
	fs := subFlags("user "+action, help, stdout, stderr)
	email := fs.String("email", "", "the user's email address")
	tenant := fs.String("tenant", auth.DefaultTenantID, "tenant id (see latch tenant list)")
	var pw *string
	if action == "create" {
		pw = fs.String("password", "", "the user's password (or set LATCH_USER_PASSWORD to keep it out of shell history)")
	}
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" {
		fs.Usage()
		return usageError("--email is required")
	}
	return withService(ctx, load, stderr, func(svc *auth.Service) error {
		if action == "disable" {
			u, err := svc.DisableAccount(ctx, *tenant, *email, "latch user disable")
			if err != nil {
				return flagError(err)
			}
			fmt.Fprintf(stdout, "disabled %s (%s); its sessions are revoked\n", u.Email, u.ID)
			return nil
		}
		plain := *pw
		if plain == "" {
			plain = os.Getenv("LATCH_USER_PASSWORD")
		}
		u, err := svc.CreateAccount(ctx, auth.NewAccount{Email: *email, Password: plain, TenantID: *tenant, Actor: "latch user create"})
		if err != nil {
			return flagError(err)
		}
		fmt.Fprintf(stdout, "created %s (%s) in tenant %s\n", u.Email, u.ID, u.TenantID)
		return nil
	})
}

// flagError reports the service's refusal of a flag's value as a usage error naming the flag.
func flagError(err error) error {
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Code != auth.CodeValidation {
		return err
	}
	msgs := make([]string, 0, len(ae.Fields))
	for _, f := range ae.Fields {
		msgs = append(msgs, "--"+flagName(f.Field)+" "+f.Message)
	}
	return usageError(strings.Join(msgs, "; "))
}

// flagName is the flag of a field the service names: tenantId is --tenant, secondStep --second-step.
func flagName(field string) string {
	if field == "tenantId" {
		return "tenant"
	}
	return auth.FieldName(field, '-')
}
