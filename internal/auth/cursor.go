package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// Listings page with cursors: a cursor is the position after the last item of a page, handed to the
// client as an opaque string and taken back for the next page. The position is a key of the
// listing's order, so a page never repeats or skips an item that existed when the first page was
// read, however many are inserted meanwhile. A cursor is signed (HMAC-SHA256 under a key derived
// from the code secret, so every instance reads every other's) over the listing it belongs to (what
// is listed, the filters, the caller's scope): one altered by hand, or carried to another listing,
// is refused as bad input rather than read as a wrong page.

// Page sizes of the listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
	maxCursorLen    = 2048
)

// PageRequest is which page of a listing to read: from the start (Cursor ""), or after a cursor a
// previous page answered.
type PageRequest struct {
	Cursor string
	Limit  int // 0: DefaultPageSize
}

// PageLimitRule is what a page size must be.
var PageLimitRule = "must be a whole number from 1 to " + strconv.Itoa(MaxPageSize)

// limit checks and defaults the page size.
func (p PageRequest) limit(v *Validation) int {
	switch {
	case p.Limit == 0:
		return DefaultPageSize
	case p.Limit < 0 || p.Limit > MaxPageSize:
		v.Add("limit", PageLimitRule)
	}
	return p.Limit
}

// listing names one listing for its cursors: what is listed and every filter, with the scope.
func listing(parts ...string) string { return strings.Join(parts, "\x00") }

func (s *Service) cursorMAC(key []byte, listing, payload string) []byte {
	k := hmac.New(sha256.New, key)
	k.Write([]byte("latch admin cursor"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(listing))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)[:16]
}

// encodeCursor signs a position of a listing.
func (s *Service) encodeCursor(listing string, pos ...string) string {
	b, _ := json.Marshal(pos) // a []string always encodes
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.cursorMAC(s.secret.Code[0], listing, payload))
}

// decodeCursor checks a cursor against the listing and returns its position, of exactly n parts;
// anything else is a validation error on field cursor.
func (s *Service) decodeCursor(v *Validation, raw, listing string, n int) []string {
	bad := func() []string {
		v.Add("cursor", "is not a cursor of this listing; ask for the first page again without it")
		return nil
	}
	payload, sig, ok := strings.Cut(raw, ".")
	if len(raw) > maxCursorLen || !ok {
		return bad()
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return bad()
	}
	valid := false
	for _, key := range s.secret.Code {
		valid = valid || hmac.Equal(mac, s.cursorMAC(key, listing, payload))
	}
	if !valid {
		return bad()
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	var pos []string
	if err != nil || json.Unmarshal(b, &pos) != nil || len(pos) != n {
		return bad()
	}
	return pos
}
