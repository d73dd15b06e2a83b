package loadgen

import (
	"errors"
	"testing"
)

func TestCheckTarget(t *testing.T) {
	for _, raw := range []string{"http://127.0.0.1:10952", "http://127.9.8.7", "http://localhost:8080/", "https://LOCALHOST",
		"http://[::1]:10952", "http://127.0.0.1:10952/prefix/"} {
		if _, err := CheckTarget(raw); err != nil {
			t.Errorf("CheckTarget(%q): %v", raw, err)
		}
	}
	for _, raw := range []string{"http://10.0.0.1:10952", "http://example.com", "http://0.0.0.0:10952", "http://[::]:10952",
		"http://[2001:db8::1]/", "http://localhost.example.com", "http://128.0.0.1", "http://"} {
		if _, err := CheckTarget(raw); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckTarget(%q) = %v, want ErrNotLoopback", raw, err)
		}
	}
	if _, err := CheckTarget("ftp://127.0.0.1/"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ftp target: %v, want ErrInvalidConfig", err)
	}
}

func TestCheckTargetKeepsPrefixWithoutTrailingSlash(t *testing.T) {
	u, err := CheckTarget("http://127.0.0.1:1/latch/?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.String(); got != "http://127.0.0.1:1/latch" {
		t.Errorf("target = %q, want http://127.0.0.1:1/latch", got)
	}
}

func TestListenSMTPRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:2525"} {
		if mb, err := ListenSMTP(addr); !errors.Is(err, ErrNotLoopback) {
			if mb != nil {
				mb.Close()
			}
			t.Errorf("ListenSMTP(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
}

func TestDialRefusesNonLoopback(t *testing.T) {
	if err := dialLoopbackOnly("tcp", "192.0.2.1:80", nil); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("dial 192.0.2.1 = %v, want ErrNotLoopback", err)
	}
	if err := dialLoopbackOnly("tcp", "[::1]:80", nil); err != nil {
		t.Errorf("dial ::1 = %v", err)
	}
}
