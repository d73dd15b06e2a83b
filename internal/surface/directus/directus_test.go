package directus

import (
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/httpapi"
)

// TestEveryCatalogueCodeHasADirectusCode holds the one mapping table to the catalogue: a code added to
// Latch must be given its Directus answer, and the 4xx/5xx class of an error must not change on the way.
func TestEveryCatalogueCodeHasADirectusCode(t *testing.T) {
	catalogue := httpapi.Catalogue()
	if diff := cmp.Diff(slices.Sorted(maps.Keys(catalogue)), slices.Sorted(maps.Keys(errorCodes))); diff != "" {
		t.Errorf("catalogue codes (-) vs mapped codes (+):\n%s", diff)
	}
	for code, status := range catalogue {
		e, ok := errorCodes[code]
		if !ok {
			continue
		}
		if e.status/100 != status/100 || e.code == "" {
			t.Errorf("%s (%d) answers %d %q", code, status, e.status, e.code)
		}
		if (status == http.StatusTooManyRequests) != (e.status == http.StatusTooManyRequests) {
			t.Errorf("%s: a throttle must stay a 429 (Retry-After) and nothing else may become one", code)
		}
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{"an unexpected error says nothing of its cause", errors.New("boom: the disk is on fire"), http.StatusInternalServerError,
			`{"errors":[{"message":"Something went wrong on our side; quote the request id if you report it.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`, ""},
		{"fields are named", &auth.Error{Code: auth.CodeValidation, Detail: "x", Fields: []auth.FieldError{{Field: "otp", Message: "is required"}, {Field: "mode", Message: "must be json"}}},
			http.StatusBadRequest, `{"errors":[{"message":"Invalid payload. \"otp\" is required; \"mode\" must be json.","extensions":{"code":"INVALID_PAYLOAD"}}]}`, ""},
		{"a throttle says when to retry", &auth.Error{Code: auth.CodeLoginThrottled, Detail: "Wait.", RetryAfter: 1500 * time.Millisecond},
			http.StatusTooManyRequests, `{"errors":[{"message":"Wait.","extensions":{"code":"REQUESTS_EXCEEDED"}}]}`, "2"},
		{"tries left of an emailed code", &auth.Error{Code: auth.CodeInvalidCode, Detail: "Wrong.", AttemptsRemaining: new(3)},
			http.StatusUnauthorized, `{"errors":[{"message":"Wrong.","extensions":{"attempts_remaining":3,"code":"INVALID_OTP"}}]}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ctx := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/directus/auth/login", nil), rec)
			New(nil, Config{}).WriteError(ctx, c.err)
			got := struct {
				Status      int
				ContentType string
				Body        string
				RetryAfter  string
			}{rec.Code, rec.Header().Get("Content-Type"), strings.TrimSpace(rec.Body.String()), rec.Header().Get("Retry-After")}
			want := got
			want.Status, want.ContentType, want.Body, want.RetryAfter = c.status, "application/json", c.body, c.retryAfter
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
