package main

import "testing"

func TestProcsWithHashing(t *testing.T) {
	for _, tc := range []struct{ cpus, slots, want int }{
		{cpus: 2, slots: 2, want: 4},
		{cpus: 2, slots: 1, want: 3},
		{cpus: 2, slots: 16, want: 4}, // more slots than CPUs queue on the Ps anyway
		{cpus: 1, slots: 1, want: 2},
		{cpus: 8, slots: 8, want: 16},
	} {
		if got := procsWithHashing(tc.cpus, tc.slots); got != tc.want {
			t.Errorf("procsWithHashing(%d CPUs, %d slots) = %d, want %d", tc.cpus, tc.slots, got, tc.want)
		}
	}
}
