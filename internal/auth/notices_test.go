package auth

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDescribeDevice(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "Firefox 120 on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.58", "Edge 119 on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "Safari 17 on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1", "Chrome 119 on iPhone"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36", "Chrome 119 on Android"},
		{"curl/8.4.0", "curl/8.4.0"},
		{"python-requests/2.31.0", "python-requests/2.31.0"},
		{"Go-http-client/1.1", "Go-http-client/1.1"},
		{"", ""},
		// What a client writes never reaches the email as it was written.
		{"evil.example/login please log in here", ""},
		{"Click https://evil.example now", ""},
		{"<a href=x>y</a>", ""},
		{"x\r\nBcc: victim@example.com", ""},
		{"Firefox/9999999999999 <script>", "Firefox"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, describeDevice(tt.ua)); diff != "" {
			t.Errorf("describeDevice(%q) (-want +got):\n%s", tt.ua, diff)
		}
	}
	long := strings.Repeat("a", 40) + "/1.0"
	if got := describeDevice(long); got != "" {
		t.Errorf("describeDevice(a 40-letter product) = %q, want it left out", got)
	}
}

func TestNoticeIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":           "203.0.113.7",
		"::ffff:203.0.113.7":    "203.0.113.7",
		"2001:db8::1":           "2001:db8::1",
		" 203.0.113.7 ":         "203.0.113.7",
		"203.0.113.7, 10.0.0.1": "",
		"evil.example":          "",
		"":                      "",
	} {
		if got := noticeIP(in); got != want {
			t.Errorf("noticeIP(%q) = %q, want %q", in, got, want)
		}
	}
}
