package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAdmitBoundsHotPathAndHonoursContext(t *testing.T) {
	s := &Store{gate: make(chan struct{}, 1)}
	release, err := s.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.admit(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("admit past capacity = %v, want the context's deadline", err)
	}
	release()
	again, err := s.admit(context.Background())
	if err != nil {
		t.Fatalf("admit after release: %v", err)
	}
	again()
}
