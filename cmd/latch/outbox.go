package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/config"
)

func cmdOutbox(ctx context.Context, args []string, load func() (config.Config, error), stdout, stderr io.Writer) error {
	fs := subFlags("outbox list [--dead] [--limit N]", "Lists outbox messages, newest first: their state (pending, sent, dead, expired), tries and last error.\n"+
		"--dead lists only the messages the mail server refused for good (a 5xx), which are never retried.\n"+
		"Message data (codes included) is never shown.", stdout, stderr)
	dead := fs.Bool("dead", false, "only messages refused for good")
	limit := fs.Int("limit", 50, "at most this many messages")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	// The action word comes first, so what follows it is parsed again for flags.
	if fs.NArg() == 0 || fs.Arg(0) != "list" {
		fs.Usage()
		return usageError("usage: latch outbox list [--dead] [--limit N]")
	}
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() > 0 || *limit < 1 {
		fs.Usage()
		return usageError("usage: latch outbox list [--dead] [--limit N]")
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
	msgs, err := st.ListOutbox(ctx, *dead, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTRIES\tCREATED\tTO\tTEMPLATE\tLAST ERROR")
	for _, m := range msgs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.ID, m.State, m.Attempts, m.CreatedAt.UTC().Format(time.RFC3339), m.To, m.Template, m.LastError)
	}
	return tw.Flush()
}
