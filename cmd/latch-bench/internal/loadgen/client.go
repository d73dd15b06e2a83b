package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Endpoint names as they appear in reports.
const (
	EndpointRegister         = "register"
	EndpointValidateRegister = "validate-register"
	EndpointLogin            = "login"
	EndpointValidateLogin    = "validate-login"
	EndpointRefresh          = "refresh"
	EndpointMe               = "me"
	EndpointVerify           = "verify"
)

var endpointPaths = map[string]string{
	EndpointRegister:         "/v2/auth/register",
	EndpointValidateRegister: "/v2/auth/validate-register",
	EndpointLogin:            "/v2/auth/login",
	EndpointValidateLogin:    "/v2/auth/validate-login",
	EndpointRefresh:          "/v2/auth/refresh",
	EndpointMe:               "/v2/auth/me",
	EndpointVerify:           "/v2/auth/verify",
}

// endpointOrder is the order of endpoints in reports.
var endpointOrder = []string{EndpointRegister, EndpointValidateRegister, EndpointLogin, EndpointValidateLogin,
	EndpointRefresh, EndpointMe, EndpointVerify}

// errTransport marks a request that got no HTTP answer.
var errTransport = errors.New("loadgen: no answer")

type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// client speaks the Latch API over one keep-alive pool shared by every worker.
type client struct {
	base string
	hc   *http.Client
}

func newClient(target *url.URL, concurrency int, timeout time.Duration) *client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: dialLoopbackOnly}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		// The server under test answers small JSON; compression would only cost CPU on both sides.
		DisableCompression: true,
	}
	return &client{
		base: target.String(),
		hc: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A redirect could lead off this machine.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// call sends one request and reads the whole answer (so the connection is reused). A 2xx JSON answer
// is decoded into out when out is not nil. It returns the status (0 with errTransport when there was
// no answer) and the time from sending to the end of the body.
func (c *client) call(ctx context.Context, endpoint string, body any, bearer string, out any) (int, time.Duration, error) {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, 0, err
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+endpointPaths[endpoint], rd)
	if err != nil {
		return 0, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, time.Since(start), errors.Join(errTransport, err)
	}
	defer res.Body.Close()
	ok := res.StatusCode >= 200 && res.StatusCode < 300
	if ok && out != nil {
		err = json.NewDecoder(res.Body).Decode(out)
	}
	if _, cerr := io.Copy(io.Discard, res.Body); err == nil && cerr != nil {
		err = errors.Join(errTransport, cerr)
	}
	return res.StatusCode, time.Since(start), err
}
