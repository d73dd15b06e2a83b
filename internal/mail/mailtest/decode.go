package mailtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// decode fills m's Subject, Text and HTML from m.Data.
func decode(m *Received) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return fmt.Errorf("parse message: %w", err)
	}
	var words mime.WordDecoder
	if m.Subject, err = words.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("decode subject: %w", err)
	}
	return decodePart(m, textproto.MIMEHeader(msg.Header), msg.Body)
}

// decodePart walks a MIME entity, keeping the first text/plain and text/html leaves it meets.
func decodePart(m *Received, h textproto.MIMEHeader, body io.Reader) error {
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		// NextRawPart: the transfer encoding is undone below, for single-part messages and parts alike.
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := decodePart(m, part.Header, part); err != nil {
				return err
			}
		}
	}

	var target *string
	switch mediaType {
	case "text/plain":
		target = &m.Text
	case "text/html":
		target = &m.HTML
	default:
		return nil
	}
	if *target != "" {
		return nil
	}
	var r io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("unknown transfer encoding %q", enc)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("decode %s body: %w", mediaType, err)
	}
	*target = string(b)
	return nil
}

// ExtractCode returns the first run of exactly six ASCII digits in text (a longer run of digits does not count).
func ExtractCode(text string) (string, bool) {
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if j-i == 6 {
			return text[i:j], true
		}
		i = j
	}
	return "", false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
