package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// checker runs the cross-instance checks; each writes PASS or FAIL lines to out.
type checker struct {
	instances []*api // each Latch instance directly, so requests are spread over all of them for sure
	mb        *sink
	db        *sql.DB // optional: the primary (or PgBouncer), to count rows as well as answers
	out       io.Writer
	runID     string
	failed    bool
}

func (c *checker) result(ok bool, format string, args ...any) {
	verdict := "PASS"
	if !ok {
		verdict, c.failed = "FAIL", true
	}
	fmt.Fprintf(c.out, "%s  %s\n", verdict, fmt.Sprintf(format, args...))
}

// spread sends n requests at once, request i to instance i mod len(instances), released together.
func (c *checker) spread(ctx context.Context, n int, path string, body any) []answer {
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = c.instances[i%len(c.instances)].post(ctx, path, body)
		})
	}
	close(start)
	wg.Wait()
	return answers
}

func tally(answers []answer) string {
	counts := map[string]int{}
	for _, a := range answers {
		counts[a.outcome()]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d x %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

const checkPassword = "cluster-check correct horse"

func (c *checker) email(what string) string {
	return fmt.Sprintf("cc-%s-%s@example.test", c.runID, what)
}

// refreshOnce: many copies of one refresh token, presented at once on every instance, rotate it
// exactly once; every copy answers with that one successor (the reuse grace), and the successor
// then works.
func (c *checker) refreshOnce(ctx context.Context, n int) error {
	p, err := signup(ctx, c.instances[0], c.mb, c.email("refresh"), checkPassword)
	if err != nil {
		return err
	}
	answers := c.spread(ctx, n, "/v2/auth/refresh", map[string]string{"refreshToken": p.RefreshToken})
	successors := map[string]int{}
	ok200 := 0
	for _, a := range answers {
		if np, err := a.pair(); err == nil {
			ok200++
			successors[np.RefreshToken]++
		}
	}
	c.result(ok200 == n && len(successors) == 1,
		"%d concurrent refreshes of one token over %d instances: %s; %d distinct successor(s)",
		n, len(c.instances), tally(answers), len(successors))
	if c.db != nil {
		var children int
		h := sha256.Sum256([]byte(p.RefreshToken))
		err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens WHERE parent_id =
			(SELECT id FROM refresh_tokens WHERE token_hash = $1)`, h[:]).Scan(&children)
		c.result(err == nil && children == 1, "database: the token has %d successor row(s) (want 1) %v", children, errOrEmpty(err))
	}
	for succ := range successors {
		a := c.instances[1%len(c.instances)].post(ctx, "/v2/auth/refresh", map[string]string{"refreshToken": succ})
		c.result(a.Status == http.StatusOK, "the successor rotates in turn: %s", a.outcome())
	}
	return nil
}

// codeOnce: one emailed login code presented at once on every instance is accepted exactly once.
func (c *checker) codeOnce(ctx context.Context, n int) error {
	email := c.email("code")
	if _, err := signup(ctx, c.instances[0], c.mb, email, checkPassword); err != nil {
		return err
	}
	seen := c.mb.count(email)
	if a := c.instances[1%len(c.instances)].post(ctx, "/v2/auth/login", map[string]string{"email": email, "password": checkPassword}); a.Status != http.StatusOK {
		return fmt.Errorf("login %s: %s", email, a.outcome())
	}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	code, err := c.mb.code(wait, email, seen)
	if err != nil {
		return err
	}
	answers := c.spread(ctx, n, "/v2/auth/validate-login", map[string]string{"email": email, "emailToken": code})
	ok, invalid := 0, 0
	for _, a := range answers {
		switch {
		case a.Status == http.StatusOK:
			ok++
		case a.Status == http.StatusUnauthorized && a.Code == "invalid_code":
			invalid++
		}
	}
	c.result(ok == 1 && invalid == n-1, "%d concurrent validate-login with one code over %d instances: %s",
		n, len(c.instances), tally(answers))
	if c.db != nil {
		var sessions int
		err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE lower(u.email) = lower($1)`, email).Scan(&sessions)
		c.result(err == nil && sessions == 2, "database: the user has %d session(s) (want 2: sign-up and one login) %v", sessions, errOrEmpty(err))
	}
	return nil
}

// cooldownOnce: logins for one account at once on every instance send one code; the rest answer
// 429 code_recently_sent with Retry-After, and so does a later login on another instance.
func (c *checker) cooldownOnce(ctx context.Context, n int) error {
	email := c.email("cooldown")
	if _, err := signup(ctx, c.instances[0], c.mb, email, checkPassword); err != nil {
		return err
	}
	seen := c.mb.count(email)
	answers := c.spread(ctx, n, "/v2/auth/login", map[string]string{"email": email, "password": checkPassword})
	ok, cooled, withRetry := 0, 0, 0
	for _, a := range answers {
		switch {
		case a.Status == http.StatusOK:
			ok++
		case a.Status == http.StatusTooManyRequests && a.Code == "code_recently_sent":
			cooled++
			if a.RetryAfter != "" {
				withRetry++
			}
		}
	}
	c.result(ok == 1 && cooled == n-1 && withRetry == cooled,
		"%d concurrent logins of one account over %d instances: %s (%d with Retry-After)",
		n, len(c.instances), tally(answers), withRetry)
	later := c.instances[len(c.instances)-1].post(ctx, "/v2/auth/login", map[string]string{"email": email, "password": checkPassword})
	c.result(later.Status == http.StatusTooManyRequests && later.Code == "code_recently_sent",
		"a login a moment later on another instance: %s, Retry-After %s s", later.outcome(), later.RetryAfter)
	// Give a second code email (there must be none) time to arrive before counting.
	time.Sleep(2 * time.Second)
	got := c.mb.count(email) - seen
	c.result(got == 1, "code emails sent for those logins: %d (want 1)", got)
	return nil
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
