package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

// chainsConfig drives refresh chains through the balancer while an operator (deploy/failover-test.sh)
// breaks and repairs the database underneath.
type chainsConfig struct {
	Clients    int
	Duration   time.Duration // the load phase
	RetryEvery time.Duration // how soon a client retries after a failed refresh
	Recover    time.Duration // how long to wait for the cluster to answer again before the final round
	After      int           // refreshes per surviving chain after the load phase
	Out        string        // JSON report file, "" for none
}

// chain is one simulated client: it owns a session and always holds the refresh token of the last
// 200 answer it received. A failed request leaves that token in place, to be presented again.
type chain struct {
	id    int
	email string
	cur   string
	// failed is true while the last attempt got no 200: that attempt may or may not have rotated
	// cur in the database (the answer, not the commit, is what was lost).
	failed      bool
	failedSince time.Duration // when the current run of failed attempts began
	maxStall    time.Duration // longest time from a failed attempt to the next 200
	acked       int           // acknowledged rotations: 200 answers
	retried     int           // 200 answers to a retry of a token whose previous attempt failed
	afterOK     int           // 200 answers after the load phase
	dead        string        // why the chain ended; "" while alive
}

type event struct {
	At      time.Duration `json:"atMs"` // since the load phase began, in ms in the JSON
	Chain   int           `json:"chain"`
	Outcome string        `json:"outcome"`
}

type chainsReport struct {
	Clients      int            `json:"clients"`
	LoadSeconds  float64        `json:"loadSeconds"`
	LoadOutcomes map[string]int `json:"loadOutcomes"`
	FirstFailure float64        `json:"firstFailureS"` // seconds into the load phase; -1 when none
	LastFailure  float64        `json:"lastFailureS"`  // -1 when none
	// MaxStall is the longest any chain went from its first failed attempt to its next 200;
	// MedianStall the median over the chains that had a failed attempt.
	MaxStall    float64 `json:"maxStallS"`
	MedianStall float64 `json:"medianStallS"`
	Retries     int     `json:"retriesAnswered200"`
	// LostAcknowledged counts tokens handed out in a 200 answer that the database did not know
	// afterwards (401 invalid_refresh_token): rotations acknowledged and then lost. Must be 0.
	LostAcknowledged int            `json:"lostAcknowledged"`
	AfterOutcomes    map[string]int `json:"afterOutcomes"`
	Continued        int            `json:"chainsContinued"` // rotated every time after recovery
	Dead             map[string]int `json:"chainsEnded"`     // by reason
	// Stuck counts chains neither continuing nor ended by a 401: after recovery their refreshes
	// kept failing. Must be 0.
	Stuck     int            `json:"chainsStuck"`
	PerSecond []secondCounts `json:"perSecond"`
}

type secondCounts struct {
	Second int `json:"second"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
}

func runChains(ctx context.Context, target *api, mb *sink, cfg chainsConfig, runID string, out io.Writer) (chainsReport, error) {
	rep := chainsReport{Clients: cfg.Clients, LoadOutcomes: map[string]int{}, AfterOutcomes: map[string]int{},
		Dead: map[string]int{}, FirstFailure: -1, LastFailure: -1}
	chains := make([]*chain, cfg.Clients)
	fmt.Fprintf(out, "setup: %d users, one session each, through %s\n", cfg.Clients, target.base)
	slots := make(chan struct{}, 8)
	errs := make(chan error, cfg.Clients)
	var wg sync.WaitGroup
	for i := range chains {
		chains[i] = &chain{id: i, email: fmt.Sprintf("chain-%s-%d@example.test", runID, i)}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			p, err := signup(ctx, target, mb, chains[i].email, checkPassword)
			chains[i].cur = p.RefreshToken
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return rep, fmt.Errorf("setup: %w", err)
		}
	}

	fmt.Fprintf(out, "load: %d chains refreshing for %s; a failed refresh is retried with the same token every %s\n",
		cfg.Clients, cfg.Duration, cfg.RetryEvery)
	var mu sync.Mutex
	var events []event
	begin := time.Now()
	until := begin.Add(cfg.Duration)
	for _, ch := range chains {
		wg.Go(func() {
			for time.Now().Before(until) && ch.dead == "" && ctx.Err() == nil {
				a := target.post(ctx, "/v2/auth/refresh", map[string]string{"refreshToken": ch.cur})
				at := time.Since(begin)
				ok := ch.step(a, at)
				mu.Lock()
				events = append(events, event{At: at, Chain: ch.id, Outcome: a.outcome()})
				mu.Unlock()
				if !ok && ch.dead == "" {
					time.Sleep(cfg.RetryEvery)
				}
			}
		})
	}
	wg.Wait()
	rep.LoadSeconds = time.Since(begin).Seconds()
	summarizeLoad(&rep, events)

	// Recovery: the cluster must answer again, then every surviving chain continues from the token it
	// holds, whatever its last attempt did.
	wait, cancel := context.WithTimeout(ctx, cfg.Recover)
	for !target.ready(wait) && wait.Err() == nil {
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	fmt.Fprintf(out, "after: every surviving chain refreshes %d more times (retrying a failed attempt up to 20 times)\n", cfg.After)
	for _, ch := range chains {
		wg.Go(func() {
			for n, tries := 0, 0; n < cfg.After && ch.dead == "" && tries < 20 && ctx.Err() == nil; tries++ {
				a := target.post(ctx, "/v2/auth/refresh", map[string]string{"refreshToken": ch.cur})
				mu.Lock()
				rep.AfterOutcomes[a.outcome()]++
				mu.Unlock()
				if ch.step(a, time.Since(begin)) {
					n++
					ch.afterOK++
				} else if ch.dead == "" {
					time.Sleep(cfg.RetryEvery)
				}
			}
		})
	}
	wg.Wait()
	var stalls []float64
	for _, ch := range chains {
		if ch.maxStall > 0 {
			stalls = append(stalls, ch.maxStall.Seconds())
		}
	}
	if len(stalls) > 0 {
		sort.Float64s(stalls)
		rep.MaxStall, rep.MedianStall = stalls[len(stalls)-1], stalls[len(stalls)/2]
	}
	for _, ch := range chains {
		rep.Retries += ch.retried
		switch {
		case ch.dead == "" && ch.afterOK == cfg.After:
			rep.Continued++
		case ch.dead == "":
			rep.Stuck++
		default:
			rep.Dead[ch.dead]++
			if ch.dead == "401 invalid_refresh_token" {
				rep.LostAcknowledged++
			}
		}
	}
	if cfg.Out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.Out, append(b, '\n'), 0o644)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// step applies one answer to the chain and reports whether it was a 200.
func (ch *chain) step(a answer, at time.Duration) bool {
	if a.Status == http.StatusOK {
		p, err := a.pair()
		if err == nil {
			if ch.failed {
				ch.retried++
				ch.maxStall = max(ch.maxStall, at-ch.failedSince)
			}
			ch.cur, ch.failed = p.RefreshToken, false
			ch.acked++
			return true
		}
	}
	if a.Status == http.StatusUnauthorized {
		// invalid_refresh_token for a token that came from a 200 means that rotation was lost;
		// refresh_token_reused means an earlier attempt had rotated it and the grace passed before
		// the retry got through. Either way the session is over for this client.
		ch.dead = a.outcome()
		return false
	}
	if !ch.failed {
		ch.failed, ch.failedSince = true, at
	}
	return false
}

func summarizeLoad(rep *chainsReport, events []event) {
	sort.Slice(events, func(i, j int) bool { return events[i].At < events[j].At })
	buckets := map[int]*secondCounts{}
	maxSec := 0
	for _, e := range events {
		rep.LoadOutcomes[e.Outcome]++
		s := int(e.At / time.Second)
		if buckets[s] == nil {
			buckets[s] = &secondCounts{Second: s}
		}
		if s > maxSec {
			maxSec = s
		}
		if e.Outcome == "200" {
			buckets[s].OK++
			continue
		}
		buckets[s].Failed++
		if rep.FirstFailure < 0 {
			rep.FirstFailure = e.At.Seconds()
		}
		rep.LastFailure = e.At.Seconds()
	}
	for s := 0; s <= maxSec; s++ {
		if b := buckets[s]; b != nil {
			rep.PerSecond = append(rep.PerSecond, *b)
		} else {
			rep.PerSecond = append(rep.PerSecond, secondCounts{Second: s})
		}
	}
}

func (rep chainsReport) write(w io.Writer) {
	fmt.Fprintf(w, "\nload phase: %.1f s, %d chains\n", rep.LoadSeconds, rep.Clients)
	printCounts(w, "  answers", rep.LoadOutcomes)
	if rep.FirstFailure >= 0 {
		fmt.Fprintf(w, "  first failed answer at %.1f s, last at %.1f s: failures for %.1f s\n",
			rep.FirstFailure, rep.LastFailure, rep.LastFailure-rep.FirstFailure)
		fmt.Fprintf(w, "  a chain's wait from a failed attempt to its next 200: longest %.2f s, median %.2f s (chains that saw a failure)\n",
			rep.MaxStall, rep.MedianStall)
	} else {
		fmt.Fprintln(w, "  no failed answer")
	}
	fmt.Fprintf(w, "  per second (200 / failed):")
	for _, s := range rep.PerSecond {
		fmt.Fprintf(w, " %d:%d/%d", s.Second, s.OK, s.Failed)
	}
	fmt.Fprintln(w)
	printCounts(w, "after recovery, answers", rep.AfterOutcomes)
	fmt.Fprintf(w, "retried tokens that then answered 200 (the grace successor, or the first rotation if the failed one never committed): %d\n", rep.Retries)
	fmt.Fprintf(w, "chains continuing: %d of %d; stuck (no 200 after recovery): %d\n", rep.Continued, rep.Clients, rep.Stuck)
	printCounts(w, "chains ended", rep.Dead)
	fmt.Fprintf(w, "acknowledged rotations lost (a token from a 200 answer unknown afterwards): %d\n", rep.LostAcknowledged)
}

func printCounts(w io.Writer, label string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%s:", label)
	if len(keys) == 0 {
		fmt.Fprint(w, " none")
	}
	for _, k := range keys {
		fmt.Fprintf(w, " %s x %d;", k, m[k])
	}
	fmt.Fprintln(w)
}
