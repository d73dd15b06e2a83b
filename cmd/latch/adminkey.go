package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
)

const adminKeyUsage = `Usage: latch [--config FILE] admin-key create --name NAME [--tenant ID]
       latch [--config FILE] admin-key list
       latch [--config FILE] admin-key revoke --id ID
`

func cmdAdminKey(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		fmt.Fprint(stdout, adminKeyUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		fmt.Fprint(stderr, adminKeyUsage)
		return usageError("usage: latch admin-key create|list|revoke")
	}
	action := args[0]
	by := auth.CommandLine("latch admin-key " + action)
	switch action {
	case "list":
		fs := subFlags("admin-key list", "Lists the admin API's keys, revoked ones too (never their secrets, which are not stored).", stdout, stderr)
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			return err
		}
		return withService(ctx, load, stderr, func(svc *auth.Service) error {
			keys, err := svc.AdminKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTENANT\tCREATED\tLAST USED\tREVOKED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orDefault(k.TenantID, "(every tenant)"),
					k.CreatedAt.UTC().Format(time.RFC3339), stampOr(k.LastUsedAt, "never"), stampOr(k.RevokedAt, "-"))
			}
			return tw.Flush()
		})
	case "revoke":
		fs := subFlags("admin-key revoke", "Revokes an admin key: the next request made with it is refused (401 admin_key_required).", stdout, stderr)
		id := fs.String("id", "", "the key's id (see latch admin-key list)")
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			return err
		}
		if strings.TrimSpace(*id) == "" {
			fs.Usage()
			return usageError("--id is required")
		}
		return withService(ctx, load, stderr, func(svc *auth.Service) error {
			if err := svc.RevokeAdminKey(ctx, *id, by); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked admin key %s\n", *id)
			return nil
		})
	}
	fs := subFlags("admin-key create", "Makes a key of the admin API (/v2/admin), sent as Authorization: Bearer lak_...\n"+
		"The key is printed once, alone on the last line; only its hash is stored. With --tenant it sees\n"+
		"and changes that tenant alone; without, every tenant.", stdout, stderr)
	name := fs.String("name", "", "what the key is for, e.g. \"billing backend\" (shown in the event log)")
	tenant := fs.String("tenant", "", "scope the key to this tenant (default: every tenant)")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		fs.Usage()
		return usageError("--name is required")
	}
	return withService(ctx, load, stderr, func(svc *auth.Service) error {
		k, secret, err := svc.CreateAdminKey(ctx, *name, *tenant, by)
		if err != nil {
			return flagError(err)
		}
		fmt.Fprintf(stdout, "created admin key %s (%s) for %s; store it now, it is not shown again:\n%s\n",
			k.ID, k.Name, orDefault(k.TenantID, "every tenant"), secret)
		return nil
	})
}

func stampOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
