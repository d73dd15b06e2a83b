package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
	"github.com/latch-auth/latch/internal/token"
)

const sessPassword = "correct horse battery"

// sessRefresh presents a refresh token in the body.
func sessRefresh(h *harness, refresh string) response {
	h.t.Helper()
	return h.post("/v2/auth/refresh", map[string]string{"refreshToken": refresh})
}

// sessRotate refreshes and requires a new token pair.
func sessRotate(t *testing.T, h *harness, refresh string) tokenPair {
	t.Helper()
	r := sessRefresh(h, refresh)
	expect(t, r, http.StatusOK)
	var p tokenPair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" || p.RefreshToken == refresh {
		t.Fatalf("refresh answered %+v: want a new access and refresh token", p)
	}
	return p
}

// sessWantProblem requires a problem+json answer with the status and catalogue code.
func sessWantProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	expect(t, r, status)
	if got := r.Problem(t).Code; got != code {
		t.Fatalf("code = %q, want %q (body %s)", got, code, r.Body)
	}
}

// sessJWT decodes a JWT's header and claims without verifying it: what a client sees.
func sessJWT(t testing.TB, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want 3: %q", len(parts), jwt)
	}
	decode := func(seg string) map[string]any {
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatalf("JWT segment is not base64url: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("JWT segment is not a JSON object: %v", err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

// sessClaim returns a string claim of an access token.
func sessClaim(t testing.TB, jwt, name string) string {
	t.Helper()
	_, c := sessJWT(t, jwt)
	s, _ := c[name].(string)
	if s == "" {
		t.Fatalf("access token has no string claim %q: %v", name, c)
	}
	return s
}

// sessLoginAs logs in with a User-Agent and an optional mode, returning the raw validate-login answer.
func sessLoginAs(h *harness, email, userAgent, mode string) response {
	h.t.Helper()
	h.clock.Advance(h.cfg.Codes.ResendCooldown + time.Second)
	expect(h.t, h.post("/v2/auth/login", map[string]string{"email": email, "password": sessPassword}, "User-Agent", userAgent), http.StatusOK)
	body := map[string]string{"email": email, "emailToken": h.codeFor(email)}
	if mode != "" {
		body["mode"] = mode
	}
	r := h.post("/v2/auth/validate-login", body, "User-Agent", userAgent)
	expect(h.t, r, http.StatusOK)
	return r
}

// sessChainLength counts the refresh tokens a session has ever had.
func sessChainLength(t *testing.T, h *harness, sessionID string) int {
	t.Helper()
	q := "SELECT count(*) FROM refresh_tokens WHERE session_id = ?"
	if h.app.Store.Dialect() == store.Postgres {
		q = "SELECT count(*) FROM refresh_tokens WHERE session_id = $1"
	}
	var n int
	if err := h.app.Store.SQLDB().QueryRow(q, sessionID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sessPost sends a JSON POST without touching testing.T, so goroutines may call it.
func sessPost(h *harness, path string, body any) (response, error) {
	j, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	res, err := h.srv.Client().Post(h.srv.URL+path, "application/json", bytes.NewReader(j))
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// sessRaceRefresh presents one refresh token n times at once, spread over the instances, and checks
// that every 200 carries the same successor. It returns that successor.
func sessRaceRefresh(t *testing.T, instances []*harness, refresh string, n int) string {
	t.Helper()
	start := make(chan struct{})
	results := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = sessPost(instances[i%len(instances)], "/v2/auth/refresh", map[string]string{"refreshToken": refresh})
		}()
	}
	close(start)
	wg.Wait()

	successors := map[string]int{}
	statuses := map[int]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		statuses[r.Status]++
		switch r.Status {
		case http.StatusOK:
			var p tokenPair
			r.JSON(t, &p)
			if p.AccessToken == "" {
				t.Errorf("request %d: 200 without an access token: %s", i, r.Body)
			}
			successors[p.RefreshToken]++
		case http.StatusUnauthorized:
			r.Problem(t)
		default:
			t.Errorf("request %d: status %d, want 200 or 401; body %s", i, r.Status, r.Body)
		}
	}
	t.Logf("%d concurrent refreshes: statuses %v", n, statuses)
	if len(successors) != 1 {
		t.Fatalf("concurrent refreshes of one token gave %d different successors, want exactly 1", len(successors))
	}
	for s := range successors {
		if s == refresh || !token.LooksLikeRefreshToken(s) {
			t.Fatalf("successor %q is not a new refresh token", s)
		}
		return s
	}
	panic("unreachable")
}

func TestRefreshConcurrentSameToken(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		p := h.signup("race@example.test", sessPassword)
		sid := sessClaim(t, p.AccessToken, "sid")

		successor := sessRaceRefresh(t, []*harness{h}, p.RefreshToken, 50)
		if n := sessChainLength(t, h, sid); n != 2 {
			t.Errorf("session has %d refresh tokens after racing one rotation, want 2 (the token and one successor)", n)
		}
		sessRotate(t, h, successor)
	})
}

func TestRefreshConcurrentAcrossInstances(t *testing.T) {
	h1 := newHarness(t, store.Postgres)
	h2 := startHarness(t, h1.cfg, h1.smtp, h1.clock)
	p := h1.signup("race2@example.test", sessPassword)
	sid := sessClaim(t, p.AccessToken, "sid")

	successor := sessRaceRefresh(t, []*harness{h1, h2}, p.RefreshToken, 50)
	if n := sessChainLength(t, h1, sid); n != 2 {
		t.Errorf("session has %d refresh tokens after racing one rotation on two instances, want 2", n)
	}
	next := sessRotate(t, h2, successor)
	sessRotate(t, h1, next.RefreshToken)
}

func TestRefreshReuse(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		ctx := context.Background()
		grace := h.cfg.Tokens.RefreshReuseGrace

		t.Run("grace then theft", func(t *testing.T) {
			p := h.signup("grace@example.test", sessPassword)
			userID, sid := sessClaim(t, p.AccessToken, "sub"), sessClaim(t, p.AccessToken, "sid")
			first := sessRotate(t, h, p.RefreshToken)

			h.clock.Advance(grace - time.Second)
			again := sessRotate(t, h, p.RefreshToken)
			if again.RefreshToken != first.RefreshToken {
				t.Fatalf("replay inside the grace got a different successor")
			}
			if again.AccessToken == "" || sessClaim(t, again.AccessToken, "sid") != sid {
				t.Fatalf("replay inside the grace: access token for another session")
			}

			h.clock.Advance(2 * time.Second)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			sessWantProblem(t, sessRefresh(h, first.RefreshToken), http.StatusUnauthorized, "session_revoked")
			sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(first.AccessToken)...),
				http.StatusUnauthorized, "session_revoked")

			q := "SELECT count(*) FROM security_events WHERE kind = 'refresh_token_reused' AND user_id = ? AND session_id = ?"
			if d == store.Postgres {
				q = "SELECT count(*) FROM security_events WHERE kind = 'refresh_token_reused' AND user_id = $1 AND session_id = $2"
			}
			var n int
			if err := h.app.Store.SQLDB().QueryRowContext(ctx, q, userID, sid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d refresh_token_reused events for session %s, want 1", n, sid)
			}
		})

		t.Run("replay after the successor was used", func(t *testing.T) {
			p := h.signup("spent@example.test", sessPassword)
			first := sessRotate(t, h, p.RefreshToken)
			second := sessRotate(t, h, first.RefreshToken)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			sessWantProblem(t, sessRefresh(h, second.RefreshToken), http.StatusUnauthorized, "session_revoked")
		})

		t.Run("other sessions survive", func(t *testing.T) {
			p := h.signup("bystander@example.test", sessPassword)
			other := h.login("bystander@example.test", sessPassword)
			first := sessRotate(t, h, p.RefreshToken)
			sessRotate(t, h, first.RefreshToken)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			sessRotate(t, h, other.RefreshToken)
		})
	})
}

func TestSessionLifetimes(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		t.Run("idle expiry", func(t *testing.T) {
			h := newHarness(t, d)
			p := h.signup("idle@example.test", sessPassword)
			h.clock.Advance(h.cfg.Tokens.RefreshIdleTTL + time.Second)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "session_expired")
		})

		t.Run("rotation extends the idle window", func(t *testing.T) {
			h := newHarness(t, d)
			idle := h.cfg.Tokens.RefreshIdleTTL
			p := h.signup("busy@example.test", sessPassword)
			h.clock.Advance(idle - time.Hour)
			next := sessRotate(t, h, p.RefreshToken)
			if want := int64(idle / time.Second); next.RefreshExpiresIn != want {
				t.Errorf("refreshExpiresIn after a rotation = %d, want the full idle window %d", next.RefreshExpiresIn, want)
			}
			h.clock.Advance(idle - time.Hour) // past the first window, inside the second
			next = sessRotate(t, h, next.RefreshToken)
			h.clock.Advance(idle + time.Second)
			sessWantProblem(t, sessRefresh(h, next.RefreshToken), http.StatusUnauthorized, "session_expired")
		})

		t.Run("absolute lifetime", func(t *testing.T) {
			h := newHarness(t, d, func(c *config.Config) {
				c.Tokens.SessionMaxAge, c.Tokens.RefreshIdleTTL = 2*time.Hour, 24*time.Hour
			})
			end := h.clock.Now().Add(2 * time.Hour)
			p := h.signup("bounded@example.test", sessPassword)
			checkEnd := func(pair tokenPair) {
				t.Helper()
				left := int64(end.Sub(h.clock.Now()) / time.Second)
				if pair.RefreshExpiresIn <= 0 || pair.RefreshExpiresIn > left {
					t.Errorf("refreshExpiresIn = %d, want 1..%d (the absolute end)", pair.RefreshExpiresIn, left)
				}
			}
			checkEnd(p)
			h.clock.Advance(time.Hour)
			next := sessRotate(t, h, p.RefreshToken)
			checkEnd(next)
			h.clock.Advance(time.Hour)
			sessWantProblem(t, sessRefresh(h, next.RefreshToken), http.StatusUnauthorized, "session_expired")
		})
	})
}

func TestLogout(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)

		t.Run("by refresh token", func(t *testing.T) {
			p := h.signup("out1@example.test", sessPassword)
			expect(t, h.post("/v2/auth/logout", map[string]string{"refreshToken": p.RefreshToken}), http.StatusNoContent)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "session_revoked")
			sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(p.AccessToken)...),
				http.StatusUnauthorized, "session_revoked")
			expect(t, h.post("/v2/auth/logout", map[string]string{"refreshToken": p.RefreshToken}), http.StatusNoContent)
		})

		t.Run("by bearer", func(t *testing.T) {
			p := h.signup("out2@example.test", sessPassword)
			expect(t, h.post("/v2/auth/logout", nil, bearer(p.AccessToken)...), http.StatusNoContent)
			sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "session_revoked")
		})

		t.Run("all sessions", func(t *testing.T) {
			sessions := []tokenPair{h.signup("out3@example.test", sessPassword)}
			for range 2 {
				sessions = append(sessions, h.login("out3@example.test", sessPassword))
			}
			bystander := h.signup("out4@example.test", sessPassword)
			expect(t, h.post("/v2/auth/logout", map[string]any{"refreshToken": sessions[1].RefreshToken, "all": true}), http.StatusNoContent)
			for i, s := range sessions {
				r := sessRefresh(h, s.RefreshToken)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("session %d of the user still refreshes after logout all: %d", i, r.Status)
				}
			}
			sessRotate(t, h, bystander.RefreshToken)
		})

		t.Run("unknown refresh token", func(t *testing.T) {
			unknown, err := token.NewRefreshToken(nil)
			if err != nil {
				t.Fatal(err)
			}
			sessWantProblem(t, h.post("/v2/auth/logout", map[string]string{"refreshToken": unknown}), http.StatusUnauthorized, "invalid_refresh_token")
			sessWantProblem(t, h.post("/v2/auth/logout", nil), http.StatusBadRequest, "validation_failed")
		})
	})
}

func TestAccessTokenTransport(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		p := h.signup("carrier@example.test", sessPassword)

		expect(t, h.do(http.MethodGet, "/v2/auth/me", nil, "Authorization", "Bearer "+p.AccessToken), http.StatusOK)
		expect(t, h.do(http.MethodGet, "/v2/auth/me", nil, "Authorization", "JWT "+p.AccessToken), http.StatusOK)
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/me?access_token="+p.AccessToken, nil), http.StatusUnauthorized, "invalid_token")
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/me", nil), http.StatusUnauthorized, "invalid_token")
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/me", nil, "Authorization", "Basic "+p.AccessToken), http.StatusUnauthorized, "invalid_token")

		h.clock.Advance(h.cfg.Tokens.AccessTTL + token.ClockLeeway + time.Second)
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/me", nil, bearer(p.AccessToken)...), http.StatusUnauthorized, "token_expired")
	})

	t.Run("query parameter allowed", func(t *testing.T) {
		h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.AllowQueryParam = true })
		p := h.signup("query@example.test", sessPassword)
		expect(t, h.do(http.MethodGet, "/v2/auth/me?access_token="+p.AccessToken, nil), http.StatusOK)
	})
}

func TestVerifyEndpoint(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		issued := h.clock.Now()
		p := h.signup("verify@example.test", sessPassword)

		var me struct {
			ID string `json:"id"`
		}
		r := h.do(http.MethodGet, "/v2/auth/me", nil, bearer(p.AccessToken)...)
		expect(t, r, http.StatusOK)
		r.JSON(t, &me)
		sessionID := sessCurrentSession(t, h, p.AccessToken)

		r = h.post("/v2/auth/verify", map[string]string{"token": p.AccessToken})
		expect(t, r, http.StatusOK)
		var got struct {
			Valid   bool `json:"valid"`
			Payload struct {
				Sub   string   `json:"sub"`
				Sid   string   `json:"sid"`
				Email string   `json:"email"`
				AMR   []string `json:"amr"`
				Iss   string   `json:"iss"`
				Aud   []string `json:"aud"`
				Iat   int64    `json:"iat"`
				Exp   int64    `json:"exp"`
				Jti   string   `json:"jti"`
			} `json:"payload"`
		}
		r.JSON(t, &got)
		if got.Payload.Jti == "" {
			t.Errorf("verify payload has no jti: %s", r.Body)
		}
		got.Payload.Jti = ""
		want := got
		want.Valid = true
		want.Payload.Sub, want.Payload.Sid, want.Payload.Email = me.ID, sessionID, "verify@example.test"
		want.Payload.AMR, want.Payload.Iss, want.Payload.Aud = []string{"pwd", "otp"}, "latch", []string{"latch"}
		want.Payload.Iat = issued.Unix()
		want.Payload.Exp = issued.Add(h.cfg.Tokens.AccessTTL).Unix()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verify answer (-want +got):\n%s", diff)
		}

		parts := strings.Split(p.AccessToken, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone else"}`))
		forged := strings.Join(parts, ".")
		for _, bad := range []string{"garbage", forged} {
			sessWantProblem(t, h.post("/v2/auth/verify", map[string]string{"token": bad}), http.StatusUnauthorized, "invalid_token")
		}
		sessWantProblem(t, h.post("/v2/auth/verify", map[string]string{}), http.StatusBadRequest, "validation_failed")
	})
}

type sessListed struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
	Current    bool      `json:"current"`
}

func sessList(t *testing.T, h *harness, access string) []sessListed {
	t.Helper()
	r := h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(access)...)
	expect(t, r, http.StatusOK)
	var out []sessListed
	r.JSON(t, &out)
	return out
}

// sessCurrentSession is the id of the session GET /v2/auth/sessions marks as the caller's.
func sessCurrentSession(t *testing.T, h *harness, access string) string {
	t.Helper()
	for _, s := range sessList(t, h, access) {
		if s.Current {
			return s.ID
		}
	}
	t.Fatal("no session is marked current")
	return ""
}

func TestSessionsEndpoints(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email = "lister@example.test"
		h.signup(email, sessPassword)
		var laptop, phone tokenPair
		sessLoginAs(h, email, "laptop/1.0", "").JSON(t, &laptop)
		phoneAt := h.clock.Now().Add(h.cfg.Codes.ResendCooldown + time.Second)
		sessLoginAs(h, email, "phone/2.0", "").JSON(t, &phone)
		laptopSID, phoneSID := sessClaim(t, laptop.AccessToken, "sid"), sessClaim(t, phone.AccessToken, "sid")

		list := sessList(t, h, phone.AccessToken)
		if len(list) != 3 {
			t.Fatalf("listed %d sessions, want 3 (signup, laptop, phone): %+v", len(list), list)
		}
		byID := map[string]sessListed{}
		for _, s := range list {
			byID[s.ID] = s
			if s.Current != (s.ID == phoneSID) {
				t.Errorf("session %s current = %v; only the caller's session %s is current", s.ID, s.Current, phoneSID)
			}
		}
		got := byID[phoneSID]
		want := sessListed{ID: phoneSID, CreatedAt: phoneAt, LastUsedAt: phoneAt, IP: "127.0.0.1", UserAgent: "phone/2.0", Current: true}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("phone session (-want +got):\n%s", diff)
		}
		if byID[laptopSID].UserAgent != "laptop/1.0" {
			t.Errorf("laptop session = %+v", byID[laptopSID])
		}

		expect(t, h.do(http.MethodDelete, "/v2/auth/sessions/"+laptopSID, nil, bearer(phone.AccessToken)...), http.StatusNoContent)
		for _, s := range sessList(t, h, phone.AccessToken) {
			if s.ID == laptopSID {
				t.Errorf("deleted session %s still listed", laptopSID)
			}
		}
		sessWantProblem(t, sessRefresh(h, laptop.RefreshToken), http.StatusUnauthorized, "session_revoked")
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(laptop.AccessToken)...), http.StatusUnauthorized, "session_revoked")
		sessWantProblem(t, h.do(http.MethodDelete, "/v2/auth/sessions/"+laptopSID, nil, bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")

		stranger := h.signup("stranger@example.test", sessPassword)
		strangerSID := sessClaim(t, stranger.AccessToken, "sid")
		sessWantProblem(t, h.do(http.MethodDelete, "/v2/auth/sessions/"+strangerSID, nil, bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")
		sessRotate(t, h, stranger.RefreshToken)
		sessWantProblem(t, h.do(http.MethodDelete, "/v2/auth/sessions/not-a-uuid", nil, bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")
		sessWantProblem(t, h.do(http.MethodDelete, "/v2/auth/sessions/"+phoneSID, nil), http.StatusUnauthorized, "invalid_token")
	})
}

// sessCookie finds the refresh cookie among an answer's Set-Cookie headers.
func sessCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("bad Set-Cookie %q: %v", line, err)
		}
		if c.Name == "latch_refresh" {
			return c
		}
	}
	t.Fatalf("no latch_refresh cookie in %v", r.Header.Values("Set-Cookie"))
	return nil
}

// sessNoRefreshInBody checks that a token answer of cookie mode keeps the refresh token out of the body.
func sessNoRefreshInBody(t *testing.T, r response) {
	t.Helper()
	var body map[string]any
	r.JSON(t, &body)
	if _, ok := body["refreshToken"]; ok {
		t.Errorf("cookie mode answer carries refreshToken in the body: %s", r.Body)
	}
	if s, _ := body["accessToken"].(string); s == "" {
		t.Errorf("cookie mode answer has no accessToken: %s", r.Body)
	}
}

func TestCookieMode(t *testing.T) {
	for _, d := range storetest.Dialects {
		for _, secure := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/secure=%v", d, secure), func(t *testing.T) {
				h := newHarness(t, d, func(c *config.Config) { c.Tokens.CookieSecure = secure })
				const email = "cookie@example.test"
				h.signup(email, sessPassword)

				checkCookie := func(r response) *http.Cookie {
					t.Helper()
					c := sessCookie(t, r)
					if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure || !token.LooksLikeRefreshToken(c.Value) {
						t.Errorf("cookie = %+v: want HttpOnly, SameSite=Strict, Secure=%v and a refresh token", c, secure)
					}
					if c.MaxAge <= 0 {
						t.Errorf("cookie MaxAge = %d, want the refresh lifetime", c.MaxAge)
					}
					sessNoRefreshInBody(t, r)
					return c
				}

				first := checkCookie(sessLoginAs(h, email, "browser", "cookie"))
				r := h.post("/v2/auth/refresh", nil, "Cookie", "latch_refresh="+first.Value)
				expect(t, r, http.StatusOK)
				second := checkCookie(r)
				if second.Value == first.Value {
					t.Fatal("refresh by cookie did not rotate the cookie")
				}

				r = h.post("/v2/auth/logout", nil, "Cookie", "latch_refresh="+second.Value)
				expect(t, r, http.StatusNoContent)
				if c := sessCookie(t, r); c.MaxAge >= 0 || c.Value != "" {
					t.Errorf("logout cookie = %+v, want it cleared", c)
				}
				sessWantProblem(t, h.post("/v2/auth/refresh", nil, "Cookie", "latch_refresh="+second.Value), http.StatusUnauthorized, "session_revoked")
			})
		}
	}
}

func TestAccessTokenShape(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		issued := h.clock.Now()
		p := h.signup("Shape@Example.test", sessPassword)
		header, claims := sessJWT(t, p.AccessToken)

		kid, _ := header["kid"].(string)
		if kid == "" || header["typ"] != "at+jwt" || header["alg"] != "ES256" {
			t.Errorf("header = %v, want typ at+jwt, alg ES256 and a kid", header)
		}
		if !slices.Contains(sessJWKSKids(t, h), kid) {
			t.Errorf("kid %q is not published in the JWKS", kid)
		}

		names := make([]string, 0, len(claims))
		for k := range claims {
			names = append(names, k)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"amr", "aud", "email", "exp", "iat", "iss", "jti", "sid", "sub", "tid"}, names); diff != "" {
			t.Errorf("claim names (-want +got):\n%s", diff)
		}
		aud := claims["aud"]
		if list, ok := aud.([]any); ok && len(list) == 1 {
			aud = list[0]
		}
		got := map[string]any{"iss": claims["iss"], "aud": aud, "email": claims["email"], "amr": claims["amr"],
			"tid": claims["tid"], "iat": claims["iat"], "exp": claims["exp"]}
		want := map[string]any{"iss": "latch", "aud": "latch", "email": "shape@example.test", "amr": []any{"pwd", "otp"},
			"tid": auth.DefaultTenantID, "iat": float64(issued.Unix()), "exp": float64(issued.Add(h.cfg.Tokens.AccessTTL).Unix())}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
		if sessClaim(t, p.AccessToken, "sid") != sessCurrentSession(t, h, p.AccessToken) {
			t.Error("sid is not the id of the caller's session")
		}
		next := sessRotate(t, h, p.RefreshToken)
		if sessClaim(t, next.AccessToken, "jti") == sessClaim(t, p.AccessToken, "jti") {
			t.Error("two access tokens share a jti")
		}
		if sessClaim(t, next.AccessToken, "sub") != sessClaim(t, p.AccessToken, "sub") ||
			sessClaim(t, next.AccessToken, "sid") != sessClaim(t, p.AccessToken, "sid") {
			t.Error("a rotation changed sub or sid")
		}
	})
}

// sessJWKSKids lists the kids GET /.well-known/jwks.json publishes.
func sessJWKSKids(t *testing.T, h *harness) []string {
	t.Helper()
	r := h.do(http.MethodGet, "/.well-known/jwks.json", nil)
	expect(t, r, http.StatusOK)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	r.JSON(t, &set)
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestDisabledUserCannotRefresh(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		ctx := context.Background()
		p := h.signup("disabled@example.test", sessPassword)
		other := h.login("disabled@example.test", sessPassword)
		bystander := h.signup("active@example.test", sessPassword)
		userID := sessClaim(t, p.AccessToken, "sub")

		if err := h.app.Store.SetUserStatus(ctx, userID, auth.StatusDisabled, auth.Event{UserID: userID, Kind: "user_disabled"}); err != nil {
			t.Fatal(err)
		}
		sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "account_disabled")
		sessWantProblem(t, sessRefresh(h, other.RefreshToken), http.StatusUnauthorized, "account_disabled")
		sessWantProblem(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(p.AccessToken)...), http.StatusUnauthorized, "session_revoked")
		live, err := h.app.Store.ListSessions(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 0 {
			t.Errorf("a disabled user still has %d live sessions", len(live))
		}
		sessRotate(t, h, bystander.RefreshToken)
	})
}
