package main

import (
	"context"
	"io"
	"os"
)

func lookupEnv(k string) string { return os.Getenv(k) }

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usageError("bench: not built yet")
}
