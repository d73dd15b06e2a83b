package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
)

const userUsage = `Usage: latch [--config FILE] user create --email E --password P [--tenant ID]
       latch [--config FILE] user list [--tenant ID] [--email-prefix P] [--disabled true|false] [--limit N]
       latch [--config FILE] user disable|enable|delete --email E [--tenant ID]
       latch [--config FILE] user set-role --email E --role R [--tenant ID]
`

// userActions are the user subcommands that name one user by email, with their help.
var userActions = map[string]string{
	"create":   "Creates an active user whose email counts as verified (the operator vouches for it).",
	"disable":  "Disables a user: they can no longer log in or refresh, and every session ends now.",
	"enable":   "Enables a disabled user again; their ended sessions stay ended.",
	"delete":   "Erases a user: the account, its sessions, codes, factors and queued mail, the login failures of\nits address, and the address wherever the security event log holds it (events keep the user id).",
	"set-role": "Sets a user's role, the role claim of their access tokens from their next login or refresh.",
}

func cmdUser(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		fmt.Fprint(stdout, userUsage)
		return flag.ErrHelp
	}
	if len(args) > 0 && args[0] == "list" {
		return cmdUserList(ctx, args[1:], load, stdout, stderr)
	}
	if len(args) == 0 || userActions[args[0]] == "" {
		fmt.Fprint(stderr, userUsage)
		return usageError("usage: latch user create|list|disable|enable|delete|set-role")
	}
	action := args[0]
	fs := subFlags("user "+action, userActions[action], stdout, stderr)
	email := fs.String("email", "", "the user's email address")
	tenant := fs.String("tenant", auth.DefaultTenantID, "tenant id (see latch tenant list)")
	var pw, role *string
	switch action {
	case "create":
		pw = fs.String("password", "", "the user's password (or set LATCH_USER_PASSWORD to keep it out of shell history)")
	case "set-role":
		role = fs.String("role", "", "the role, e.g. admin (1 to 64 letters, digits, '_', '.', ':' or '-')")
	}
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" {
		fs.Usage()
		return usageError("--email is required")
	}
	by := auth.CommandLine("latch user " + action)
	return withService(ctx, load, stderr, func(svc *auth.Service) error {
		if action == "create" {
			plain := *pw
			if plain == "" {
				plain = os.Getenv("LATCH_USER_PASSWORD")
			}
			u, err := svc.CreateUser(ctx, by, auth.NewUser{Email: *email, Password: plain, TenantID: *tenant, EmailVerified: true})
			if err != nil {
				return flagError(err)
			}
			fmt.Fprintf(stdout, "created %s (%s) in tenant %s\n", u.Email, u.ID, u.TenantID)
			return nil
		}
		u, err := svc.FindUser(ctx, by, *tenant, *email)
		if err != nil {
			return flagError(err)
		}
		switch action {
		case "delete":
			if err := svc.DeleteUser(ctx, by, u.ID); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s (%s): the account and everything of it is erased; its events keep the id\n", u.Email, u.ID)
			return nil
		case "disable", "enable":
			disabled := action == "disable"
			if _, err := svc.UpdateUser(ctx, by, u.ID, auth.UserInput{Disabled: &disabled}); err != nil {
				return err
			}
			if disabled {
				fmt.Fprintf(stdout, "disabled %s (%s); its sessions are revoked\n", u.Email, u.ID)
			} else {
				fmt.Fprintf(stdout, "enabled %s (%s)\n", u.Email, u.ID)
			}
			return nil
		}
		updated, err := svc.UpdateUser(ctx, by, u.ID, auth.UserInput{Role: role})
		if err != nil {
			return flagError(err)
		}
		fmt.Fprintf(stdout, "%s (%s) now has role %s\n", updated.Email, updated.ID, updated.Role)
		return nil
	})
}

func cmdUserList(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("user list", "Lists users by tenant, then email.", stdout, stderr)
	tenant := fs.String("tenant", "", "only this tenant's users (default: every tenant)")
	prefix := fs.String("email-prefix", "", "only emails starting with this")
	disabled := fs.String("disabled", "", "true: only disabled users; false: only enabled ones (default: both)")
	limit := fs.Int("limit", 0, "at most this many users (default: all)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	filter := auth.UserFilter{TenantID: *tenant, EmailPrefix: *prefix}
	if *disabled != "" {
		b, err := strconv.ParseBool(*disabled)
		if err != nil {
			fs.Usage()
			return usageError("--disabled must be true or false")
		}
		filter.Disabled = &b
	}
	if *limit < 0 {
		return usageError("--limit must be positive")
	}
	by := auth.CommandLine("latch user list")
	return withService(ctx, load, stderr, func(svc *auth.Service) error {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tEMAIL\tVERIFIED\tSTATUS\tROLE\tCREATED")
		page := auth.PageRequest{Limit: auth.MaxPageSize}
		for n := 0; ; {
			res, err := svc.ListUsers(ctx, by, filter, page)
			if err != nil {
				return flagError(err)
			}
			for _, u := range res.Items {
				if *limit > 0 && n == *limit {
					return tw.Flush()
				}
				n++
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", u.ID, u.TenantID, u.Email, u.EmailVerifiedAt != nil, u.Status, u.Role,
					u.CreatedAt.UTC().Format(time.RFC3339))
			}
			if res.NextCursor == "" {
				return tw.Flush()
			}
			page.Cursor = res.NextCursor
		}
	})
}
