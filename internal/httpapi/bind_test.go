package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

// echoDecoded answers 200 with what decode made of the body.
func echoDecoded[T any](c echo.Context) error {
	var req T
	if err := decode(c, &req); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, req)
}

// decodeServer is the real router and middleware (request id, body limit, error handler) with test
// routes that decode into each request shape and stop there, so no service is needed.
func decodeServer() http.Handler {
	s := New(Config{}, nil, slog.New(slog.DiscardHandler))
	e := s.echo
	e.POST("/decode/credentials", echoDecoded[credentialsRequest])
	e.POST("/decode/code", echoDecoded[codeRequest])
	e.POST("/decode/logout", echoDecoded[logoutRequest])
	e.POST("/decode/reset", echoDecoded[resetRequest])
	return s.Handler()
}

var decodePaths = []string{"/decode/credentials", "/decode/code", "/decode/logout", "/decode/reset"}

func multipartSeed(fields map[string]string) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.SetBoundary("fuzzboundary")
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []struct{ contentType, body string }{
		{"application/json", `{"email":"a@b.c","password":"pw","all":true}`},
		{"application/json", `{"email":5}`},
		{"application/json", `{"all":"yes"}`},
		{"application/json", `{"all":{"x":[1]}}`},
		{"application/json", `[]`},
		{"application/json", `null`},
		{"application/json", `{`},
		{"application/json", `{"email":"a"} {"email":"b"}`},
		{"application/json", ""},
		{"application/json; charset=utf-8", `{"emailToken":"123456"}`},
		{"application/problem+json", `{"email":"x"}`},
		{"", `{"email":"x"}`},
		{"application/json;;;=", `{}`},
		{"text/plain", `{}`},
		{"application/x-www-form-urlencoded", "email=a%40b.c&password=pw&all=true"},
		{"application/x-www-form-urlencoded", "all=maybe"},
		{"application/x-www-form-urlencoded", "%zz=&&="},
		{"multipart/form-data", "email=a"},
		{"multipart/form-data; boundary=", "--\r\n"},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@b.c\r\n--x"},
		{"application/json", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`},
		{"application/x-www-form-urlencoded", "email=" + strings.Repeat("a", 70<<10)},
	} {
		f.Add(seed.contentType, []byte(seed.body))
	}
	ct, body := multipartSeed(map[string]string{"email": "a@b.c", "all": "1", "emailToken": "000001"})
	f.Add(ct, body)
	ct, body = multipartSeed(map[string]string{"all": "nope"})
	f.Add(ct, body)

	h := decodeServer()
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		for _, path := range decodePaths {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkDecodeAnswer(t, path, rec)
		}
	})
}

func checkDecodeAnswer(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == http.StatusOK {
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: 200 with a body that is not JSON: %q", path, rec.Body)
		}
		return
	}
	if rec.Code >= http.StatusInternalServerError || rec.Code < http.StatusBadRequest {
		t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: status %d with Content-Type %q", path, rec.Code, ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%s: problem body %q: %v", path, rec.Body, err)
	}
	if status, ok := Catalogue()[p.Code]; !ok || status != rec.Code || p.Status != rec.Code || p.Title == "" || p.RequestID == "" {
		t.Fatalf("%s: status %d with problem %+v", path, rec.Code, p)
	}
	if p.Code == "validation_failed" && len(p.Errors) == 0 {
		t.Fatalf("%s: validation_failed naming no field: %+v", path, p)
	}
}

// TestDecodeAnswers pins what the fuzz target only bounds: which answer each kind of body gets.
func TestDecodeAnswers(t *testing.T) {
	h := decodeServer()
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code                    string
		fields                  []string
	}{
		{"json", "application/json", `{"email":"a@b.c","password":"pw","ignored":1}`, http.StatusOK, "", nil},
		{"no content type", "", `{"email":"a@b.c"}`, http.StatusOK, "", nil},
		{"empty body", "application/json", " \n", http.StatusOK, "", nil},
		{"wrong type", "application/json", `{"password":5}`, http.StatusBadRequest, "validation_failed", []string{"password"}},
		{"array", "application/json", `[{"email":"a@b.c"}]`, http.StatusBadRequest, "malformed_request", nil},
		{"broken", "application/json", `{"email":`, http.StatusBadRequest, "malformed_request", nil},
		{"text", "text/plain", `{}`, http.StatusUnsupportedMediaType, "unsupported_media_type", nil},
		{"too large", "application/json", `{"email":"` + strings.Repeat("a", 64<<10) + `"}`, http.StatusRequestEntityTooLarge, "payload_too_large", nil},
		{"form", "application/x-www-form-urlencoded", "email=a%40b.c", http.StatusOK, "", nil},
		{"bad form", "application/x-www-form-urlencoded", "%zz", http.StatusBadRequest, "malformed_request", nil},
		{"multipart without boundary", "multipart/form-data", "x", http.StatusBadRequest, "malformed_request", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/decode/credentials", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkDecodeAnswer(t, "/decode/credentials", rec)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status == http.StatusOK {
				return
			}
			var p Problem
			json.Unmarshal(rec.Body.Bytes(), &p)
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if diff := cmp.Diff(c.code, p.Code); diff != "" {
				t.Errorf("code (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeForm(t *testing.T) {
	h := decodeServer()
	ct, body := multipartSeed(map[string]string{"refreshToken": "lrt_x", "all": "true"})
	for _, c := range []struct{ contentType, body string }{
		{"application/x-www-form-urlencoded", "refreshToken=lrt_x&all=true&unknown=1"},
		{ct, string(body)},
		{"application/json", `{"refreshToken":"lrt_x","all":true}`},
	} {
		req := httptest.NewRequest(http.MethodPost, "/decode/logout", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.contentType, rec.Code, rec.Body)
		}
		var got logoutRequest
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(logoutRequest{RefreshToken: "lrt_x", All: true}, got); diff != "" {
			t.Errorf("%s: decoded (-want +got):\n%s", c.contentType, diff)
		}
	}
}
