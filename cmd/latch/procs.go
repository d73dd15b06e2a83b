package main

import (
	"os"
	"runtime"
)

// defaultProcs is the GOMAXPROCS the Go runtime chose (the CPUs, or the container's CPU limit)
// before serve adds processors for password hashing.
var defaultProcs = runtime.GOMAXPROCS(0)

// procsWithHashing is the GOMAXPROCS serve runs with: one P per CPU for requests, the outbox worker
// and the database driver, plus one per hashing slot (at most one per CPU).
//
// An argon2id hash is 25 ms of pure computation. With GOMAXPROCS equal to the CPUs, the hashes of a
// login burst hold every P, and each other goroutine that becomes runnable (a refresh's database
// answer, a step of the SMTP conversation that delivers a code) waits for the Go scheduler's 10 ms
// preemption tick before it runs. Extra Ps let those goroutines run at once on their own threads and
// leave the sharing of the CPUs to the kernel, which favours threads that have just woken. Measured
// (docs/benchmarks.md): code email p99 during logins 108-130 ms -> 31-38 ms, validate-login p99
// 98-130 ms -> 36-41 ms; refresh and me throughput unchanged within noise.
func procsWithHashing(defaultProcs, slots int) int {
	return defaultProcs + min(slots, defaultProcs)
}

// addHashingProcs raises GOMAXPROCS as procsWithHashing says, unless the operator set GOMAXPROCS.
// It returns the value in force.
func addHashingProcs(slots int) int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := procsWithHashing(defaultProcs, slots)
	runtime.GOMAXPROCS(n)
	return n
}
