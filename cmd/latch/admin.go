package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
