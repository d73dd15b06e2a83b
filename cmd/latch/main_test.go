package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// runLatch runs the latch command line as an operator would, returning its output and error.
func runLatch(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestCommandLineHelpAndVersion(t *testing.T) {
	stdout, _, err := runLatch(t, "version")
	if err != nil || stdout != "latch "+version+"\n" {
		t.Errorf("latch version: err %v, output %q", err, stdout)
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"migrate", "-h"}, {"keys", "--help"}} {
		stdout, stderr, err := runLatch(t, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("latch %v: %v", args, err)
		}
		if err != nil && exitCode(err) != 0 {
			t.Errorf("latch %v exits %d, want 0", args, exitCode(err))
		}
		if !strings.Contains(stdout+stderr, "Usage") {
			t.Errorf("latch %v printed no usage: %q", args, stdout+stderr)
		}
	}
	_, _, err = runLatch(t, "frobnicate")
	var u usageError
	if !errors.As(err, &u) || exitCode(err) != 2 {
		t.Errorf("an unknown command: err %v, exit %d; want a usage error, exit 2", err, exitCode(err))
	}
}
