package mail_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	latchmail "github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func unsent(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	if err := s.SQLDB().QueryRow(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// queueCodes queues one login code email to each of n new users and returns their addresses.
func queueCodes(t *testing.T, s *store.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	var to []string
	for i := range n {
		u := auth.User{Email: fmt.Sprintf("slow%02d@example.test", i)}
		if err := s.CreateUser(ctx, &u, "x", auth.Event{}); err != nil {
			t.Fatal(err)
		}
		_, err := s.IssueCode(ctx, auth.IssueCode{UserID: u.ID, Purpose: auth.PurposeLogin, CodeHash: []byte("h"), TTL: 10 * time.Minute,
			MaxAttempts: 5, Cooldown: time.Minute, MaxPerHour: 10,
			Mail: auth.Email{To: u.Email, Template: latchmail.LoginCode, ExpiresAt: time.Now().Add(10 * time.Minute),
				Data: func(bool) (string, error) { return `{"Code":"123456","ValidMinutes":10}`, nil }}})
		if err != nil {
			t.Fatal(err)
		}
		to = append(to, u.Email)
	}
	return to
}

// TestOutboxSendsOnceWhenSendsOutlastTheLease: two workers share an outbox whose mail server takes
// longer to accept a message than a lease lasts. A worker used to lease a whole batch at once and send
// it a few at a time, so the rows waiting their turn, and the slow ones, came due again and the other
// worker sent them too. It leases a message only when it starts sending it, and keeps the lease while
// it sends: every message arrives once. Real clock, real database, real SMTP.
func TestOutboxSendsOnceWhenSendsOutlastTheLease(t *testing.T) {
	srv := mailtest.NewServer(t)
	// The send outlasts the lease one and a half times over. The lease is 3 s, not the 30 s default, to keep
	// the test short, but not less: it is renewed every second, and on a loaded CI machine a renewal's
	// commit has been seen to take longer than a 1 s lease's 0.67 s of slack.
	srv.DelayData(4500 * time.Millisecond)
	dbURL := storetest.URL(t, store.Postgres)
	s := openStore(t, dbURL)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	to := queueCodes(t, s, 8)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		peer := openStore(t, dbURL)
		cfg := smtpConfig(srv, latchmail.TLSNone)
		w := latchmail.NewWorker(peer, newRenderer(t, ""), newSMTP(t, cfg), slog.New(slog.DiscardHandler))
		w.Lease, w.Poll = 3*time.Second, 50*time.Millisecond
		wg.Go(func() { w.Run(ctx) })
	}
	for _, addr := range to {
		if _, err := srv.WaitFor(addr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for unsent(t, s) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Run returns once the sends in flight have ended, so a second copy on its way is counted too.
	cancel()
	wg.Wait()
	got := map[string]int{}
	for _, m := range srv.Messages() {
		got[m.To[0]]++
	}
	want := map[string]int{}
	for _, addr := range to {
		want[addr] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per recipient (-want +got):\n%s", diff)
	}
}
