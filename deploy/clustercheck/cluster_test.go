package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestExactlyOnceAcrossInstances runs the exactly-once checks against a running local cluster. It
// needs one (deploy/local-cluster.sh up), so it runs only when LATCH_CLUSTER_URL names its balancer:
//
//	LATCH_CLUSTER_URL=http://127.0.0.1:10960 go test ./deploy/clustercheck/
//
// LATCH_CLUSTER_INSTANCES, LATCH_CLUSTER_SMTP and LATCH_CLUSTER_DB override the local cluster's
// defaults (see main.go's flags).
func TestExactlyOnceAcrossInstances(t *testing.T) {
	target := os.Getenv("LATCH_CLUSTER_URL")
	if target == "" {
		t.Skip("LATCH_CLUSTER_URL is not set: no cluster to check (deploy/local-cluster.sh up)")
	}
	args := []string{"exactly-once", "-target", target}
	for env, flag := range map[string]string{"LATCH_CLUSTER_INSTANCES": "-instances", "LATCH_CLUSTER_SMTP": "-smtp", "LATCH_CLUSTER_DB": "-db"} {
		if v := os.Getenv(env); v != "" {
			args = append(args, flag, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
}

// The chain bookkeeping decides what the failover figures say, so it is checked without a cluster.
func TestChainStep(t *testing.T) {
	ok := answer{Status: 200, Body: []byte(`{"accessToken":"a","refreshToken":"lrt_next"}`)}
	ch := &chain{cur: "lrt_first"}
	if ch.step(answer{Status: 500}, time.Second) || !ch.failed || ch.cur != "lrt_first" || ch.dead != "" {
		t.Fatalf("after a 500: %+v, want the same token kept and marked failed", ch)
	}
	ch.step(answer{}, 2*time.Second) // no answer: still the same run of failures
	if !ch.step(ok, 3500*time.Millisecond) || ch.cur != "lrt_next" || ch.failed || ch.retried != 1 || ch.acked != 1 ||
		ch.maxStall != 2500*time.Millisecond {
		t.Fatalf("after a retried 200: %+v, want the new token and a 2.5 s stall", ch)
	}
	if ch.step(answer{Status: 401, Code: "invalid_refresh_token"}, 0) || ch.dead != "401 invalid_refresh_token" {
		t.Fatalf("after a 401: %+v, want the chain ended with its reason", ch)
	}
	rep := chainsReport{LoadOutcomes: map[string]int{}, FirstFailure: -1, LastFailure: -1}
	summarizeLoad(&rep, []event{{At: 2500 * time.Millisecond, Outcome: "200"}, {At: 500 * time.Millisecond, Outcome: "200"},
		{At: 1200 * time.Millisecond, Outcome: "no answer"}, {At: 1700 * time.Millisecond, Outcome: "502"}})
	if rep.FirstFailure != 1.2 || rep.LastFailure != 1.7 || len(rep.PerSecond) != 3 ||
		rep.PerSecond[1] != (secondCounts{Second: 1, Failed: 2}) || rep.LoadOutcomes["200"] != 2 {
		t.Fatalf("summary = %+v", rep)
	}
}
