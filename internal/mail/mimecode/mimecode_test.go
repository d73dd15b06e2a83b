package mimecode_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/mail/mimecode"
)

// crlf writes test messages with plain newlines and sends them as SMTP delivers them.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want mimecode.Message
	}{
		{
			name: "multipart alternative: base64 text, quoted-printable HTML, encoded subject",
			raw: `Subject: =?UTF-8?q?Code_f=C3=BCr_dich?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

WW91ciBjb2RlIGlzIDY1NDMyMS4gTmV2ZXIgc2hhcmUg
aXQu
--b1
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p style=3D"x">Your code is <b>654321</b>.</p>
--b1--
`,
			want: mimecode.Message{Subject: "Code für dich", Text: "Your code is 654321. Never share it.",
				HTML: "<p style=\"x\">Your code is <b>654321</b>.</p>"},
		},
		{
			name: "single part, quoted-printable soft line break",
			raw: "Subject: plain\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"the code is=\n 123456=3D\n",
			want: mimecode.Message{Subject: "plain", Text: "the code is 123456=\r\n"},
		},
		{
			name: "no content type is plain text",
			raw:  "Subject: bare\n\nhello\n",
			want: mimecode.Message{Subject: "bare", Text: "hello\r\n"},
		},
		{
			name: "nested multipart: first text and HTML kept, attachment and later texts skipped",
			raw: `Subject: nested
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

first
--inner
Content-Type: text/html

<p>first</p>
--inner--
--outer
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer
Content-Type: text/plain

second
--outer--
`,
			want: mimecode.Message{Subject: "nested", Text: "first", HTML: "<p>first</p>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mimecode.Decode(crlf(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRefusesUnreadableMessages(t *testing.T) {
	for name, raw := range map[string]string{
		"no header":                "just a line without a colon\n\nbody\n",
		"unknown subject charset":  "Subject: =?x-unheard-of?q?hi?=\n\nbody\n",
		"bad content type":         "Subject: x\nContent-Type: text/plain; charset\n\nbody\n",
		"unknown transfer coding":  "Subject: x\nContent-Transfer-Encoding: x-uuencode\n\nbody\n",
		"broken base64":            "Subject: x\nContent-Transfer-Encoding: base64\n\n!!!!\n",
		"multipart never finished": "Subject: x\nContent-Type: multipart/alternative; boundary=B\n\n--B\nContent-Type: text/html\n\n<p>",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := mimecode.Decode(crlf(raw))
			if !errors.Is(err, mimecode.ErrUnreadable) {
				t.Errorf("Decode = %+v, %v; want ErrUnreadable", got, err)
			}
		})
	}
}

func TestMessageCode(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // "" for no code
	}{
		{
			name: "quoted-printable with a soft line break inside the code, digits in the address",
			raw: "Subject: =?utf-8?q?Your_login_code?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
				"Content-Transfer-Encoding: quoted-printable\n\nHello bench-1-999999@example.test,=\n\n    12=\n3456\n\nValid for 10 minutes.\n",
			want: "123456",
		},
		{
			name: "text part wins over the HTML part's colours",
			raw: "Subject: code\nContent-Type: multipart/alternative; boundary=XX\n\n--XX\n" +
				"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
				"VXNlIHRoaXMgY29kZTogNjU0\nMzIx\n--XX\nContent-Type: text/html\n\n<p style=\"color:#333333\">111111</p>\n--XX--\n",
			want: "654321",
		},
		{
			name: "subject before HTML",
			raw: "Subject: Your Latch login code: 024680\nContent-Type: multipart/alternative; boundary=B\n\n--B\n" +
				"Content-Type: text/plain\n\nsee the subject\n--B\nContent-Type: text/html\n\n<p>135791</p>\n--B--\n",
			want: "024680",
		},
		{
			name: "code only in the HTML part, after colours in attributes and a style block",
			raw: "Subject: hi\nContent-Type: multipart/alternative; boundary=B\n\n--B\nContent-Type: text/plain\n\nno code here\n" +
				"--B\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"<html><head><style>p > b { color: #222222 }</style></head><body style=3D\"background:#f4f5f7\">" +
				"<!-- 999999 --><p style=3D\"color:#333333\">Code:</p><p>777888</p></body></html>\n--B--\n",
			want: "777888",
		},
		{
			name: "HTML entity is a character, not a code",
			raw:  "Subject: hi\nContent-Type: text/html\n\n<p>&#100000;</p><p>code</p><p>246802</p>\n",
			want: "246802",
		},
		{
			name: "no code: a seven-digit number, a date, digits inside the address",
			raw:  "Subject: Someone tried to sign up\n\nSomeone used bench-1234567-1@example.test on 2024-01-02; 1234567 is not a code.\n",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mimecode.Decode(crlf(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := m.Code()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("code (-want +got):\n%s", diff)
			}
			if ok != (tt.want != "") {
				t.Errorf("ok = %v with code %q", ok, got)
			}
		})
	}
}

func TestExtractCode(t *testing.T) {
	tests := []struct {
		text, want string // want "" for no code
	}{
		{"Your code is 123456.", "123456"},
		{"123456", "123456"},
		{"call 0123456789, then use 654321", "654321"},
		{"12345 and 1234567 only", ""},
		{"valid 10 minutes: 000042 ok", "000042"},
		{"code:135790;", "135790"},
		{"(987654)", "987654"},
		{"- 112233 -", "112233"},
		{"Hello bench-123456-7@example.test, your code is 998877", "998877"},
		{"user123456@example.test and 123456@example.test and abc123456", ""},
		{"on 2024-01-02 at 12:34:56", ""},
		{"no digits", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := mimecode.ExtractCode(tt.text)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ExtractCode(%q) (-want +got):\n%s", tt.text, diff)
		}
		if ok != (tt.want != "") {
			t.Errorf("ExtractCode(%q) ok = %v", tt.text, ok)
		}
	}
}
