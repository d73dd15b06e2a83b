package apptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Raw is a request body sent byte for byte with its content type ("" sends no Content-Type). A Body
// whose length Go cannot see is sent chunked, so only reading it finds its size.
type Raw struct {
	ContentType string
	Body        io.Reader
}

// Response is a whole HTTP answer, read before the connection is given back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// NewRequest builds a request to the instance. body is nil (none), a Raw, or any other value, sent as
// JSON. headers are name, value pairs, set after the content type so they may override it.
func (in *Instance) NewRequest(method, path string, body any, headers ...string) (*http.Request, error) {
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case Raw:
		rd, contentType = b.Body, b.ContentType
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req, nil
}

// Send is the request without a testing.T, for goroutines other than the test's: it reports what went
// wrong instead of failing the test, and checks nothing about the answer.
func (in *Instance) Send(method, path string, body any, headers ...string) (Response, error) {
	req, err := in.NewRequest(method, path, body, headers...)
	if err != nil {
		return Response{}, err
	}
	res, err := in.srv.Client().Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// Do sends a request (see NewRequest for body and headers), failing the test when no answer comes
// and flagging an answer without X-Request-Id, which every response must carry.
func (in *Instance) Do(t testing.TB, method, path string, body any, headers ...string) Response {
	t.Helper()
	r, err := in.Send(method, path, body, headers...)
	checkAnswer(t, method+" "+path, r, err)
	return r
}

// Get sends a GET.
func (in *Instance) Get(t testing.TB, path string, headers ...string) Response {
	t.Helper()
	return in.Do(t, http.MethodGet, path, nil, headers...)
}

// Post sends a POST.
func (in *Instance) Post(t testing.TB, path string, body any, headers ...string) Response {
	t.Helper()
	return in.Do(t, http.MethodPost, path, body, headers...)
}

func checkAnswer(t testing.TB, request string, r Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", request, err)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", request)
	}
}

// AtOnce calls send(0) … send(n-1) from n goroutines released together, and returns the answers in
// order once all have come. send must use Send, not t; the checks Do makes are made here afterwards,
// in the test's goroutine.
func AtOnce(t testing.TB, n int, send func(i int) (Response, error)) []Response {
	t.Helper()
	answers := make([]Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = send(i)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		checkAnswer(t, fmt.Sprintf("request %d", i), answers[i], errs[i])
	}
	return answers
}

// Bearer is the Authorization header pair for an access token.
func Bearer(access string) []string { return []string{"Authorization", "Bearer " + access} }

// Form encodes fields as application/x-www-form-urlencoded.
func Form(fields map[string]string) string {
	v := url.Values{}
	for k, x := range fields {
		v.Set(k, x)
	}
	return v.Encode()
}

// Multipart encodes fields as multipart/form-data, returning the content type with its boundary.
func Multipart(t testing.TB, fields map[string]string) (contentType string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// RawRequest writes request to the instance byte for byte on a new connection and reads the answer:
// for requests Go's client refuses to send, such as headers with control characters.
func (in *Instance) RawRequest(t testing.TB, request string) Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may answer and close before it has read everything; the answer is what matters.
	go io.WriteString(conn, request)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read the answer's body: %v", err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}
