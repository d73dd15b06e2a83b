package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The README walk-through runs as pasted: every ```bash block of README.md, in order, in one bash
// session under `set -euo pipefail`, against a fresh `latch serve` (its own SQLite database, the
// sandbox inbox on) on a free port that replaces the README's localhost:10952. The blocks read their
// codes from the sandbox inbox and check the answers themselves (curl -f, jq -e); other fences (sh,
// console, text, ...) are documentation. A failing command fails the test with its block's number,
// line, text and output.

// readmeBlock is one ```bash block: its text and the line of README.md it starts on.
type readmeBlock struct {
	line int
	text string
}

// readmeBlocks extracts the ```bash blocks of a Markdown document, in order.
func readmeBlocks(doc string) ([]readmeBlock, error) {
	var blocks []readmeBlock
	var cur *readmeBlock
	var body strings.Builder
	fence := ""
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && strings.HasPrefix(trimmed, "```"):
			fence = "```"
			if strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == "bash" {
				cur = &readmeBlock{line: n + 1}
				body.Reset()
			}
		case fence != "" && trimmed == fence:
			fence = ""
			if cur != nil {
				cur.text = body.String()
				blocks = append(blocks, *cur)
				cur = nil
			}
		case cur != nil:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if fence != "" {
		return nil, errors.New("README.md: a code fence is never closed")
	}
	return blocks, sc.Err()
}

// readmeEnd is printed once every block has run.
const readmeEnd = "@@readme-end@@"

// blockMarker precedes each block's output, so a failure is attributed to its block.
var blockMarker = regexp.MustCompile(`(?m)^@@readme-block (\d+)@@$`)

// readmeScript is the one bash session that runs the blocks, addressed to the server at port.
func readmeScript(blocks []readmeBlock, root string, port int) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "set -euo pipefail\ncd %q\n", root)
	for i, blk := range blocks {
		text := strings.ReplaceAll(blk.text, "localhost:10952", "localhost:"+strconv.Itoa(port))
		if strings.Contains(text, "10952") {
			return "", fmt.Errorf("README block %d (line %d) names port 10952 other than as localhost:10952, which the runner cannot redirect", i+1, blk.line)
		}
		fmt.Fprintf(&b, "printf '\\n@@readme-block %d@@\\n'\n%s", i+1, text)
	}
	// A block that ends the session early (exit 0) must not pass for the blocks after it.
	b.WriteString("printf '\\n" + readmeEnd + "\\n'\n")
	return b.String(), nil
}

// readmeTools are what the blocks run besides latch. .ci/run installs them when missing; elsewhere
// their absence skips the test, but CI=true must not pass without running it.
func requireReadmeTools(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("the README walk-through needs %s, which is not installed (.ci/run installs it: apt-get install %s)", tool, tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// repoRoot is the directory of go.mod, two levels above this package.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// goBinDir is where the go command of this toolchain lives, for the blocks' `go run`: the test's
// own toolchain (a PATH without /usr/local/go/bin must not pick another or none), else the one on PATH.
func goBinDir() string {
	if root := runtime.GOROOT(); root != "" {
		if _, err := os.Stat(filepath.Join(root, "bin", "go")); err == nil {
			return filepath.Join(root, "bin")
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// buildLatch builds this command into a temporary directory of t.
func buildLatch(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latch")
	cmd := exec.Command(filepath.Join(goBinDir(), "go"), "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// withoutLatchEnv is environ without LATCH_* variables, so the developer's own settings cannot
// reach the fresh server or the blocks.
func withoutLatchEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "LATCH_") {
			out = append(out, kv)
		}
	}
	return out
}

// readmeServer is a fresh `latch serve` as the README starts it (sandbox on), on a free port.
type readmeServer struct {
	port int
	env  []string // what the blocks' commands need to reach the same database: LATCH_DATABASE_URL
	log  *bytes.Buffer
}

func startReadmeServer(t *testing.T, bin, root string) *readmeServer {
	t.Helper()
	addr := freeAddr(t)
	_, portText, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portText)
	dbEnv := []string{"LATCH_DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "latch.db")}
	cmd := exec.Command(bin, "serve")
	// The repository root, as the README's reader: its config.yaml applies.
	cmd.Dir = root
	cmd.Env = append(withoutLatchEnv(os.Environ()), append(dbEnv, "LATCH_SERVER_ADDR="+addr, "LATCH_SANDBOX_ENABLED=true")...)
	s := &readmeServer{port: port, env: dbEnv, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("latch serve log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("latch serve exited before it was ready:\n%s", s.log)
		default:
		}
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch serve not ready after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runReadme runs the blocks in one bash session against s; the error names the failing block and
// holds its text and output.
func runReadme(ctx context.Context, s *readmeServer, root string, blocks []readmeBlock) (string, error) {
	script, err := readmeScript(blocks, root, s.port)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script)
	cmd.Dir = root
	cmd.Env = append(withoutLatchEnv(os.Environ()), s.env...)
	cmd.Env = append(cmd.Env, "PATH="+goBinDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Its own process group, so a timeout ends the commands it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	output := out.String()
	if runErr == nil && !strings.Contains(output, "\n"+readmeEnd+"\n") {
		runErr = errors.New("the session ended before its last block")
	}
	if runErr == nil {
		return output, nil
	}
	marks := blockMarker.FindAllStringSubmatchIndex(output, -1)
	if len(marks) == 0 {
		return output, fmt.Errorf("the README session failed before its first block: %v\n%s", runErr, output)
	}
	last := marks[len(marks)-1]
	n, _ := strconv.Atoi(output[last[2]:last[3]])
	blk := blocks[n-1]
	return output, &blockError{n: n, line: blk.line, err: runErr, text: blk.text, output: strings.TrimPrefix(output[last[1]:], "\n")}
}

// blockError is a README block that failed.
type blockError struct {
	n, line      int
	err          error
	text, output string
}

func (e *blockError) Error() string {
	return fmt.Sprintf("README.md block %d (line %d) failed: %v\n--- the block ---\n%s--- its output ---\n%s", e.n, e.line, e.err, e.text, e.output)
}

func TestReadmeRunsAsPasted(t *testing.T) {
	requireReadmeTools(t)
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d bash blocks; the walk-through alone has more", len(blocks))
	}
	s := startReadmeServer(t, buildLatch(t), root)
	start := time.Now()
	if _, err := runReadme(context.Background(), s, root, blocks); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d README blocks ran in %s", len(blocks), time.Since(start).Round(time.Millisecond))
}

// TestReadmeRunnerCatchesBrokenBlocks: a block that calls a route that is not there, or expects a field
// the answer does not have, fails the runner at that block.
func TestReadmeRunnerCatchesBrokenBlocks(t *testing.T) {
	requireReadmeTools(t)
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildLatch(t)
	for _, c := range []struct{ name, from, to string }{
		{"a route that is not there", "/v2/auth/register", "/v2/auth/registr"},
		{"a field the answer does not have", "jq -er .accessToken", "jq -er .access_token"},
		{"a code that is not the emailed one", `\"emailToken\":\"$CODE\"`, `\"emailToken\":\"000000\"`},
		{"a block that ends the session early", "SEEN=\"\"", "exit 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			blocks, err := readmeBlocks(string(doc))
			if err != nil {
				t.Fatal(err)
			}
			mutated := -1
			for i := range blocks {
				if strings.Contains(blocks[i].text, c.from) {
					blocks[i].text = strings.Replace(blocks[i].text, c.from, c.to, 1)
					mutated = i + 1
					break
				}
			}
			if mutated < 0 {
				t.Fatalf("no README block contains %q", c.from)
			}
			s := startReadmeServer(t, bin, root)
			_, err = runReadme(context.Background(), s, root, blocks[:mutated])
			var be *blockError
			if !errors.As(err, &be) || be.n != mutated {
				t.Fatalf("mutated block %d: runner answered %v, want a failure of block %d", mutated, err, mutated)
			}
		})
	}
}

func TestReadmeBlocksAreExtractedInOrder(t *testing.T) {
	doc := "# x\n```sh\nnot run\n```\ntext\n```bash\necho one\n```\n```text\n```bash\n```\n```bash\necho two\necho three\n```\n"
	blocks, err := readmeBlocks(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []readmeBlock{{line: 7, text: "echo one\n"}, {line: 13, text: "echo two\necho three\n"}}
	if diff := cmp.Diff(want, blocks, cmp.AllowUnexported(readmeBlock{})); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
	if _, err := readmeBlocks("```bash\necho never closed\n"); err == nil {
		t.Error("an unclosed fence was accepted")
	}
}
