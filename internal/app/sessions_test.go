package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
	"github.com/latch-auth/latch/internal/token"
)

// loginAs logs in with a User-Agent and an optional mode, returning the raw validate-login answer.
func loginAs(t *testing.T, h *apptest.Instance, email, userAgent, mode string) apptest.Response {
	t.Helper()
	h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
	apptest.WantStatus(t, h.LoginStep(t, email, apptest.Password, "User-Agent", userAgent), http.StatusOK)
	body := apptest.EmailCode(email, h.CodeFor(t, email))
	if mode != "" {
		body["mode"] = mode
	}
	r := h.Post(t, "/v2/auth/validate-login", body, "User-Agent", userAgent)
	apptest.WantStatus(t, r, http.StatusOK)
	return r
}

// chainLength counts the refresh tokens a session has ever had.
func chainLength(t *testing.T, h *apptest.Instance, sessionID string) int {
	t.Helper()
	q := "SELECT count(*) FROM refresh_tokens WHERE session_id = ?"
	if h.App.Store.Dialect() == store.Postgres {
		q = "SELECT count(*) FROM refresh_tokens WHERE session_id = $1"
	}
	var n int
	if err := h.App.Store.SQLDB().QueryRow(q, sessionID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// raceRefresh presents one refresh token n times at once, spread over the instances, and checks that
// every 200 carries the same successor. It returns that successor.
func raceRefresh(t *testing.T, instances []*apptest.Instance, refresh string, n int) string {
	t.Helper()
	results := apptest.AtOnce(t, n, func(i int) (apptest.Response, error) {
		return instances[i%len(instances)].Send(http.MethodPost, "/v2/auth/refresh", map[string]string{"refreshToken": refresh})
	})

	successors := map[string]int{}
	statuses := map[int]int{}
	for i, r := range results {
		statuses[r.Status]++
		switch r.Status {
		case http.StatusOK:
			p := r.TokenPair(t)
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
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		p := h.Signup(t, "race@example.test", apptest.Password)
		sid := apptest.Claim(t, p.AccessToken, "sid")

		successor := raceRefresh(t, []*apptest.Instance{h}, p.RefreshToken, 50)
		if n := chainLength(t, h, sid); n != 2 {
			t.Errorf("session has %d refresh tokens after racing one rotation, want 2 (the token and one successor)", n)
		}
		h.Rotate(t, successor)
	})
}

func TestRefreshConcurrentAcrossInstances(t *testing.T) {
	h1 := apptest.New(t, store.Postgres)
	h2 := h1.StartPeer(t)
	p := h1.Signup(t, "race2@example.test", apptest.Password)
	sid := apptest.Claim(t, p.AccessToken, "sid")

	successor := raceRefresh(t, []*apptest.Instance{h1, h2}, p.RefreshToken, 50)
	if n := chainLength(t, h1, sid); n != 2 {
		t.Errorf("session has %d refresh tokens after racing one rotation on two instances, want 2", n)
	}
	next := h2.Rotate(t, successor)
	h1.Rotate(t, next.RefreshToken)
}

func TestRefreshReuse(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		ctx := context.Background()
		grace := h.Config.Tokens.RefreshReuseGrace

		t.Run("grace then theft", func(t *testing.T) {
			p := h.Signup(t, "grace@example.test", apptest.Password)
			userID, sid := apptest.Claim(t, p.AccessToken, "sub"), apptest.Claim(t, p.AccessToken, "sid")
			first := h.Rotate(t, p.RefreshToken)

			h.Clock.Advance(grace - time.Second)
			again := h.Rotate(t, p.RefreshToken)
			if again.RefreshToken != first.RefreshToken {
				t.Fatalf("replay inside the grace got a different successor")
			}
			if again.AccessToken == "" || apptest.Claim(t, again.AccessToken, "sid") != sid {
				t.Fatalf("replay inside the grace: access token for another session")
			}

			h.Clock.Advance(2 * time.Second)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			apptest.WantProblem(t, h.Refresh(t, first.RefreshToken), http.StatusUnauthorized, "session_revoked")
			apptest.WantProblem(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(first.AccessToken)...),
				http.StatusUnauthorized, "session_revoked")

			q := "SELECT count(*) FROM security_events WHERE kind = 'refresh_token_reused' AND user_id = ? AND session_id = ?"
			if d == store.Postgres {
				q = "SELECT count(*) FROM security_events WHERE kind = 'refresh_token_reused' AND user_id = $1 AND session_id = $2"
			}
			var n int
			if err := h.App.Store.SQLDB().QueryRowContext(ctx, q, userID, sid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d refresh_token_reused events for session %s, want 1", n, sid)
			}
		})

		t.Run("replay after the successor was used", func(t *testing.T) {
			p := h.Signup(t, "spent@example.test", apptest.Password)
			first := h.Rotate(t, p.RefreshToken)
			second := h.Rotate(t, first.RefreshToken)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			apptest.WantProblem(t, h.Refresh(t, second.RefreshToken), http.StatusUnauthorized, "session_revoked")
		})

		t.Run("other sessions survive", func(t *testing.T) {
			p := h.Signup(t, "bystander@example.test", apptest.Password)
			other := h.Login(t, "bystander@example.test", apptest.Password)
			first := h.Rotate(t, p.RefreshToken)
			h.Rotate(t, first.RefreshToken)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
			h.Rotate(t, other.RefreshToken)
		})
	})
}

func TestSessionLifetimes(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		t.Run("idle expiry", func(t *testing.T) {
			h := apptest.New(t, d)
			p := h.Signup(t, "idle@example.test", apptest.Password)
			h.Clock.Advance(h.Config.Tokens.RefreshIdleTTL + time.Second)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "session_expired")
		})

		t.Run("rotation extends the idle window", func(t *testing.T) {
			h := apptest.New(t, d)
			idle := h.Config.Tokens.RefreshIdleTTL
			p := h.Signup(t, "busy@example.test", apptest.Password)
			h.Clock.Advance(idle - time.Hour)
			next := h.Rotate(t, p.RefreshToken)
			if want := int64(idle / time.Second); next.RefreshExpiresIn != want {
				t.Errorf("refreshExpiresIn after a rotation = %d, want the full idle window %d", next.RefreshExpiresIn, want)
			}
			h.Clock.Advance(idle - time.Hour) // past the first window, inside the second
			next = h.Rotate(t, next.RefreshToken)
			h.Clock.Advance(idle + time.Second)
			apptest.WantProblem(t, h.Refresh(t, next.RefreshToken), http.StatusUnauthorized, "session_expired")
		})

		t.Run("absolute lifetime", func(t *testing.T) {
			h := apptest.New(t, d, func(c *config.Config) {
				c.Tokens.SessionMaxAge, c.Tokens.RefreshIdleTTL = 2*time.Hour, 24*time.Hour
			})
			end := h.Clock.Now().Add(2 * time.Hour)
			p := h.Signup(t, "bounded@example.test", apptest.Password)
			checkEnd := func(pair apptest.TokenPair) {
				t.Helper()
				left := int64(end.Sub(h.Clock.Now()) / time.Second)
				if pair.RefreshExpiresIn <= 0 || pair.RefreshExpiresIn > left {
					t.Errorf("refreshExpiresIn = %d, want 1..%d (the absolute end)", pair.RefreshExpiresIn, left)
				}
			}
			checkEnd(p)
			h.Clock.Advance(time.Hour)
			next := h.Rotate(t, p.RefreshToken)
			checkEnd(next)
			h.Clock.Advance(time.Hour)
			apptest.WantProblem(t, h.Refresh(t, next.RefreshToken), http.StatusUnauthorized, "session_expired")
		})
	})
}

func TestLogout(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)

		t.Run("by refresh token", func(t *testing.T) {
			p := h.Signup(t, "out1@example.test", apptest.Password)
			apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", map[string]string{"refreshToken": p.RefreshToken}), http.StatusNoContent)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "session_revoked")
			apptest.WantProblem(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(p.AccessToken)...),
				http.StatusUnauthorized, "session_revoked")
			apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", map[string]string{"refreshToken": p.RefreshToken}), http.StatusNoContent)
		})

		t.Run("by bearer", func(t *testing.T) {
			p := h.Signup(t, "out2@example.test", apptest.Password)
			apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", nil, apptest.Bearer(p.AccessToken)...), http.StatusNoContent)
			apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "session_revoked")
		})

		t.Run("all sessions", func(t *testing.T) {
			sessions := []apptest.TokenPair{h.Signup(t, "out3@example.test", apptest.Password)}
			for range 2 {
				sessions = append(sessions, h.Login(t, "out3@example.test", apptest.Password))
			}
			bystander := h.Signup(t, "out4@example.test", apptest.Password)
			apptest.WantStatus(t, h.Post(t, "/v2/auth/logout", map[string]any{"refreshToken": sessions[1].RefreshToken, "all": true}), http.StatusNoContent)
			for i, s := range sessions {
				r := h.Refresh(t, s.RefreshToken)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("session %d of the user still refreshes after logout all: %d", i, r.Status)
				}
			}
			h.Rotate(t, bystander.RefreshToken)
		})

		t.Run("unknown refresh token", func(t *testing.T) {
			unknown, err := token.NewRefreshToken(nil)
			if err != nil {
				t.Fatal(err)
			}
			apptest.WantProblem(t, h.Post(t, "/v2/auth/logout", map[string]string{"refreshToken": unknown}), http.StatusUnauthorized, "invalid_refresh_token")
			apptest.WantProblem(t, h.Post(t, "/v2/auth/logout", nil), http.StatusBadRequest, "validation_failed")
		})
	})
}

func TestAccessTokenTransport(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		p := h.Signup(t, "carrier@example.test", apptest.Password)

		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", "Authorization", "Bearer "+p.AccessToken), http.StatusOK)
		apptest.WantStatus(t, h.Get(t, "/v2/auth/me", "Authorization", "JWT "+p.AccessToken), http.StatusOK)
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me?access_token="+p.AccessToken), http.StatusUnauthorized, "invalid_token")
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me"), http.StatusUnauthorized, "invalid_token")
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me", "Authorization", "Basic "+p.AccessToken), http.StatusUnauthorized, "invalid_token")

		h.Clock.Advance(h.Config.Tokens.AccessTTL + token.ClockLeeway + time.Second)
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me", apptest.Bearer(p.AccessToken)...), http.StatusUnauthorized, "token_expired")
	})

	t.Run("query parameter allowed", func(t *testing.T) {
		h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.AllowQueryParam = true })
		p := h.Signup(t, "query@example.test", apptest.Password)
		apptest.WantStatus(t, h.Get(t, "/v2/auth/me?access_token="+p.AccessToken), http.StatusOK)
	})
}

func TestVerifyEndpoint(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		issued := h.Clock.Now()
		p := h.Signup(t, "verify@example.test", apptest.Password)
		me := h.Me(t, p.AccessToken)
		sessionID := currentSession(t, h, p.AccessToken)

		r := h.Post(t, "/v2/auth/verify", map[string]string{"token": p.AccessToken})
		apptest.WantStatus(t, r, http.StatusOK)
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
		want.Payload.Exp = issued.Add(h.Config.Tokens.AccessTTL).Unix()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verify answer (-want +got):\n%s", diff)
		}

		parts := strings.Split(p.AccessToken, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone else"}`))
		forged := strings.Join(parts, ".")
		for _, bad := range []string{"garbage", forged} {
			apptest.WantProblem(t, h.Post(t, "/v2/auth/verify", map[string]string{"token": bad}), http.StatusUnauthorized, "invalid_token")
		}
		apptest.WantProblem(t, h.Post(t, "/v2/auth/verify", map[string]string{}), http.StatusBadRequest, "validation_failed")
	})
}

// listedSession is one entry of GET /v2/auth/sessions.
type listedSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
	Current    bool      `json:"current"`
}

func listSessions(t *testing.T, h *apptest.Instance, access string) []listedSession {
	t.Helper()
	r := h.Get(t, "/v2/auth/sessions", apptest.Bearer(access)...)
	apptest.WantStatus(t, r, http.StatusOK)
	var out []listedSession
	r.JSON(t, &out)
	return out
}

// currentSession is the id of the session GET /v2/auth/sessions marks as the caller's.
func currentSession(t *testing.T, h *apptest.Instance, access string) string {
	t.Helper()
	for _, s := range listSessions(t, h, access) {
		if s.Current {
			return s.ID
		}
	}
	t.Fatal("no session is marked current")
	return ""
}

func TestSessionsEndpoints(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "lister@example.test"
		h.Signup(t, email, apptest.Password)
		laptop := loginAs(t, h, email, "laptop/1.0", "").TokenPair(t)
		phoneAt := h.Clock.Now().Add(h.Config.Codes.ResendCooldown + time.Second)
		phone := loginAs(t, h, email, "phone/2.0", "").TokenPair(t)
		laptopSID, phoneSID := apptest.Claim(t, laptop.AccessToken, "sid"), apptest.Claim(t, phone.AccessToken, "sid")

		list := listSessions(t, h, phone.AccessToken)
		if len(list) != 3 {
			t.Fatalf("listed %d sessions, want 3 (signup, laptop, phone): %+v", len(list), list)
		}
		byID := map[string]listedSession{}
		for _, s := range list {
			byID[s.ID] = s
			if s.Current != (s.ID == phoneSID) {
				t.Errorf("session %s current = %v; only the caller's session %s is current", s.ID, s.Current, phoneSID)
			}
		}
		got := byID[phoneSID]
		want := listedSession{ID: phoneSID, CreatedAt: phoneAt, LastUsedAt: phoneAt, IP: "127.0.0.1", UserAgent: "phone/2.0", Current: true}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("phone session (-want +got):\n%s", diff)
		}
		if byID[laptopSID].UserAgent != "laptop/1.0" {
			t.Errorf("laptop session = %+v", byID[laptopSID])
		}

		apptest.WantStatus(t, h.Do(t, http.MethodDelete, "/v2/auth/sessions/"+laptopSID, nil, apptest.Bearer(phone.AccessToken)...), http.StatusNoContent)
		for _, s := range listSessions(t, h, phone.AccessToken) {
			if s.ID == laptopSID {
				t.Errorf("deleted session %s still listed", laptopSID)
			}
		}
		apptest.WantProblem(t, h.Refresh(t, laptop.RefreshToken), http.StatusUnauthorized, "session_revoked")
		apptest.WantProblem(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(laptop.AccessToken)...), http.StatusUnauthorized, "session_revoked")
		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/sessions/"+laptopSID, nil, apptest.Bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")

		stranger := h.Signup(t, "stranger@example.test", apptest.Password)
		strangerSID := apptest.Claim(t, stranger.AccessToken, "sid")
		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/sessions/"+strangerSID, nil, apptest.Bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")
		h.Rotate(t, stranger.RefreshToken)
		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/sessions/not-a-uuid", nil, apptest.Bearer(phone.AccessToken)...), http.StatusNotFound, "not_found")
		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/sessions/"+phoneSID, nil), http.StatusUnauthorized, "invalid_token")
	})
}

// noRefreshInBody checks that a token answer of cookie mode keeps the refresh token out of the body.
func noRefreshInBody(t *testing.T, r apptest.Response) {
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
				h := apptest.New(t, d, func(c *config.Config) { c.Tokens.CookieSecure = secure })
				const email = "cookie@example.test"
				h.Signup(t, email, apptest.Password)

				checkCookie := func(r apptest.Response) *http.Cookie {
					t.Helper()
					c := apptest.Cookie(t, r, "latch_refresh")
					if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure || !token.LooksLikeRefreshToken(c.Value) {
						t.Errorf("cookie = %+v: want HttpOnly, SameSite=Strict, Secure=%v and a refresh token", c, secure)
					}
					if c.MaxAge <= 0 {
						t.Errorf("cookie MaxAge = %d, want the refresh lifetime", c.MaxAge)
					}
					noRefreshInBody(t, r)
					return c
				}

				first := checkCookie(loginAs(t, h, email, "browser", "cookie"))
				r := h.Post(t, "/v2/auth/refresh", nil, "Cookie", "latch_refresh="+first.Value)
				apptest.WantStatus(t, r, http.StatusOK)
				second := checkCookie(r)
				if second.Value == first.Value {
					t.Fatal("refresh by cookie did not rotate the cookie")
				}

				r = h.Post(t, "/v2/auth/logout", nil, "Cookie", "latch_refresh="+second.Value)
				apptest.WantStatus(t, r, http.StatusNoContent)
				if c := apptest.Cookie(t, r, "latch_refresh"); c.MaxAge >= 0 || c.Value != "" {
					t.Errorf("logout cookie = %+v, want it cleared", c)
				}
				apptest.WantProblem(t, h.Post(t, "/v2/auth/refresh", nil, "Cookie", "latch_refresh="+second.Value), http.StatusUnauthorized, "session_revoked")
			})
		}
	}
}

func TestAccessTokenShape(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		issued := h.Clock.Now()
		p := h.Signup(t, "Shape@Example.test", apptest.Password)
		header, claims := apptest.DecodeJWT(t, p.AccessToken)

		kid, _ := header["kid"].(string)
		if kid == "" || header["typ"] != "at+jwt" || header["alg"] != "ES256" {
			t.Errorf("header = %v, want typ at+jwt, alg ES256 and a kid", header)
		}
		if !slices.Contains(h.JWKSKids(t), kid) {
			t.Errorf("kid %q is not published in the JWKS", kid)
		}

		names := make([]string, 0, len(claims))
		for k := range claims {
			names = append(names, k)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"amr", "aud", "auth_time", "email", "exp", "iat", "iss", "jti", "role", "sid", "sub", "tid"}, names); diff != "" {
			t.Errorf("claim names (-want +got):\n%s", diff)
		}
		aud := claims["aud"]
		if list, ok := aud.([]any); ok && len(list) == 1 {
			aud = list[0]
		}
		got := map[string]any{"iss": claims["iss"], "aud": aud, "email": claims["email"], "amr": claims["amr"],
			"tid": claims["tid"], "role": claims["role"], "iat": claims["iat"], "exp": claims["exp"], "auth_time": claims["auth_time"]}
		want := map[string]any{"iss": "latch", "aud": "latch", "email": "shape@example.test", "amr": []any{"pwd", "otp"},
			"tid": auth.DefaultTenantID, "role": auth.DefaultRole, "iat": float64(issued.Unix()), "exp": float64(issued.Add(h.Config.Tokens.AccessTTL).Unix()),
			"auth_time": float64(issued.Unix())}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
		if apptest.Claim(t, p.AccessToken, "sid") != currentSession(t, h, p.AccessToken) {
			t.Error("sid is not the id of the caller's session")
		}
		next := h.Rotate(t, p.RefreshToken)
		if apptest.Claim(t, next.AccessToken, "jti") == apptest.Claim(t, p.AccessToken, "jti") {
			t.Error("two access tokens share a jti")
		}
		if apptest.Claim(t, next.AccessToken, "sub") != apptest.Claim(t, p.AccessToken, "sub") ||
			apptest.Claim(t, next.AccessToken, "sid") != apptest.Claim(t, p.AccessToken, "sid") {
			t.Error("a rotation changed sub or sid")
		}
	})
}

func TestDisabledUserCannotRefresh(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		ctx := context.Background()
		p := h.Signup(t, "disabled@example.test", apptest.Password)
		other := h.Login(t, "disabled@example.test", apptest.Password)
		bystander := h.Signup(t, "active@example.test", apptest.Password)
		userID := apptest.Claim(t, p.AccessToken, "sub")

		if err := h.App.Store.SetUserStatus(ctx, userID, auth.StatusDisabled, auth.Event{UserID: userID, Kind: "user_disabled"}); err != nil {
			t.Fatal(err)
		}
		apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "account_disabled")
		apptest.WantProblem(t, h.Refresh(t, other.RefreshToken), http.StatusUnauthorized, "account_disabled")
		apptest.WantProblem(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(p.AccessToken)...), http.StatusUnauthorized, "session_revoked")
		live, err := h.App.Store.ListSessions(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 0 {
			t.Errorf("a disabled user still has %d live sessions", len(live))
		}
		h.Rotate(t, bystander.RefreshToken)
	})
}
