package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/config"
)

// TestComposeFileIsValid loads compose.yaml as `docker compose config` does (compose-go, the
// library docker compose is built on, validating against the Compose schema), since this machine
// has no Docker engine, and checks that what it configures Latch with are real keys.
func TestComposeFileIsValid(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: types.Mapping{},
	})
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	names := project.ServiceNames()
	slices.Sort(names)
	if diff := cmp.Diff([]string{"latch", "mailpit", "postgres"}, names); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	latch, err := project.GetService("latch")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range latch.Environment {
		if v == nil {
			t.Errorf("latch: %s has no value", k)
			continue
		}
		env = append(env, k+"="+*v)
	}
	if unknown := config.UnknownEnv(env); len(unknown) > 0 {
		t.Errorf("latch is configured with keys Latch does not know: %v", unknown)
	}
	if _, err := config.Load("", false, env); err != nil {
		t.Errorf("latch's environment in compose.yaml is not a valid configuration: %v", err)
	}
	if latch.Build == nil || latch.Build.Context != root {
		t.Errorf("latch is not built from the repository: %+v", latch.Build)
	}
}
