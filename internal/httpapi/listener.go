package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
)

// WrapListener makes the answers net/http writes on its own problem+json like every other answer.
//
// net/http refuses some requests while it reads the request line and headers (a control character
// in a header value, headers over http.Server.MaxHeaderBytes, an unknown transfer coding, a missing
// Host, an unknown Expect), before any handler runs, and writes a text/plain answer straight to the
// connection. Nothing above the connection can change those answers, so the connection does: a
// write that is exactly one of them is replaced with the problem answer of the same status.
func WrapListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c}, nil
}

type problemConn struct{ net.Conn }

// CloseWrite keeps net/http's lingering close after a 431 working.
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *problemConn) Write(p []byte) (int, error) {
	status, ok := cannedStatus(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(cannedProblem(status)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cannedHeaders follow the status line of every answer net/http writes on its own while reading a
// request (server.go, conn.serve).
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// cannedStatus recognises an answer net/http wrote on its own and returns its status. Answers of
// the router never match: they carry X-Request-Id, and net/http writes header names sorted, so no
// Content-Type of theirs comes right after the status line.
func cannedStatus(p []byte) (int, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || !bytes.HasPrefix(p, []byte(proto)) {
		return 0, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil {
		return 0, false
	}
	end := bytes.Index(p, []byte("\r\n"))
	switch {
	case end >= 0 && bytes.HasPrefix(p[end:], []byte(cannedHeaders)):
		return status, true
	case status == http.StatusExpectationFailed && !bytes.Contains(p, []byte("\r\nX-Request-Id: ")):
		// Written through the response, with Connection: close and no body; the router never
		// answers 417.
		return status, true
	}
	return 0, false
}

// cannedCodes are the catalogue codes of the statuses net/http answers on its own.
var cannedCodes = map[int]struct{ code, detail string }{
	http.StatusBadRequest:                  {codeMalformed, "The request line or headers are not valid HTTP."},
	http.StatusRequestHeaderFieldsTooLarge: {codeHeadersTooLarge, "The request's header fields are over the size limit."},
	http.StatusNotImplemented:              {codeNotImplemented, "The request's transfer coding is not supported."},
	http.StatusHTTPVersionNotSupported:     {codeHTTPVersion, "Send HTTP/1.1 (or HTTP/1.0)."},
	http.StatusExpectationFailed:           {codeExpectationFailed, "The only expectation supported is 100-continue."},
}

func cannedProblem(status int) []byte {
	c, ok := cannedCodes[status]
	if !ok {
		c = cannedCodes[http.StatusBadRequest]
		status = http.StatusBadRequest
	}
	id := newRequestID()
	p := Problem{Title: catalogue[c.code].title, Status: status, Code: c.code, Detail: c.detail, RequestID: id}
	body, _ := json.Marshal(p)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Content-Type: application/problem+json\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("X-Request-Id: " + id + "\r\n")
	b.WriteString("X-Content-Type-Options: nosniff\r\n")
	b.WriteString("Cache-Control: no-store\r\n")
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
