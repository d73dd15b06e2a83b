// Package mimecode reads a received email the way its recipient would: it undoes the MIME structure
// and the transfer encodings, then finds the six-digit code a person would type.
//
// The tests' SMTP server (internal/mail/mailtest) and the load generator (cmd/latch-bench) both read
// codes through it, so they cannot disagree on what the code of a message is. It must not import
// "testing": the load generator is a binary.
package mimecode

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// ErrUnreadable wraps every reason a message could not be decoded.
var ErrUnreadable = errors.New("mimecode: unreadable message")

// Message is what a mail client shows of an email.
type Message struct {
	MessageID string // without its angle brackets: every copy of one outbox message carries the same
	Subject   string // decoded from RFC 2047 encoded words
	Text      string // the first text/plain part, decoded; "" when there is none
	HTML      string // the first text/html part, decoded; "" when there is none
}

// Decode parses a raw RFC 5322 message. Parts other than text/plain and text/html are skipped; of
// each of those two, the first one met (depth first) is kept, as in a multipart/alternative.
func Decode(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	m := Message{MessageID: strings.Trim(msg.Header.Get("Message-Id"), "<> ")}
	var words mime.WordDecoder
	if m.Subject, err = words.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("%w: subject: %w", ErrUnreadable, err)
	}
	if err := m.collect(textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

func (m *Message) collect(h textproto.MIMEHeader, body io.Reader) error {
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("%w: content type %q: %w", ErrUnreadable, ctype, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		// Raw parts, so that the transfer encoding is undone below in one place for a single-part
		// message and for parts alike (NextPart would undo quoted-printable only).
		parts := multipart.NewReader(body, params["boundary"])
		for {
			p, err := parts.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w: multipart: %w", ErrUnreadable, err)
			}
			if err := m.collect(p.Header, p); err != nil {
				return err
			}
		}
	}
	var dst *string
	switch mediaType {
	case "text/plain":
		dst = &m.Text
	case "text/html":
		dst = &m.HTML
	default:
		return nil
	}
	if *dst != "" {
		return nil
	}
	r := body
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips the line breaks itself
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("%w: transfer encoding %q", ErrUnreadable, enc)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrUnreadable, mediaType, err)
	}
	*dst = string(text)
	return nil
}

// Code finds the message's code: in the plain text first, then the subject, then the words the HTML
// part displays. The HTML comes last because it is the part most likely to hold other numbers.
func (m Message) Code() (string, bool) {
	for _, text := range []string{m.Text, m.Subject, visibleText(m.HTML)} {
		if code, ok := ExtractCode(text); ok {
			return code, true
		}
	}
	return "", false
}

// ExtractCode returns the first word of text made of exactly six ASCII digits. Words break at
// anything that cannot be part of an email address, so the digits of bench-123456-7@example.test
// are no code, nor are 0123456789 or 2024-01-02; dots, dashes, underscores and plus signs at a
// word's ends are punctuation and do not count ("Your code is 123456.").
func ExtractCode(text string) (string, bool) {
	words := strings.FieldsFunc(text, func(r rune) bool { return !inAddress(r) })
	for _, w := range words {
		w = strings.Trim(w, "._+-")
		if len(w) == 6 && strings.Trim(w, "0123456789") == "" {
			return w, true
		}
	}
	return "", false
}

func inAddress(r rune) bool {
	return '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || strings.ContainsRune("@._+-", r)
}

// visibleText is the text an HTML body displays: tags, comments and the contents of style and script
// elements dropped (style="color:#333333" or a CSS block holds six-digit colours), entities
// unescaped (&#123456; is a character, not a code). Each tag becomes a space so that words in
// neighbouring elements stay apart.
func visibleText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		lt := strings.IndexByte(s, '<')
		if lt < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:lt])
		b.WriteByte(' ')
		s = s[lt:]
		if strings.HasPrefix(s, "<!--") {
			s = after(s, "-->")
			continue
		}
		name := tagName(s)
		s = after(s, ">")
		if name == "style" || name == "script" {
			// Their content may hold '<' and '>' of its own: skip straight to the closing tag.
			end := strings.Index(strings.ToLower(s), "</"+name)
			if end < 0 {
				break
			}
			s = after(s[end:], ">")
		}
	}
	return html.UnescapeString(b.String())
}

// tagName is the lower-case name of the tag s starts with ("<p style=...>" gives "p").
func tagName(s string) string {
	s = s[1:]
	end := strings.IndexFunc(s, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') })
	if end < 0 {
		end = len(s)
	}
	return strings.ToLower(s[:end])
}

// after returns what follows the first sep in s, or "" when there is no sep.
func after(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return ""
}
