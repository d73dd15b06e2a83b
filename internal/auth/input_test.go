package auth

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmailSpellingsOfOneAddress: every way of writing one address becomes the same stored address,
// so it cannot become a second account.
func TestEmailSpellingsOfOneAddress(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Ann@Example.TEST ", "ann@example.test"},
		{"ren\u00e9@example.test", "ren\u00e9@example.test"},  // é precomposed
		{"rene\u0301@example.test", "ren\u00e9@example.test"}, // e + combining acute
		{"ann@b\u00fccher.example", "ann@xn--bcher-kva.example"},
		{"ann@B\u00dcCHER.example", "ann@xn--bcher-kva.example"},
		{"ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example"},
		{"ann@\uff45xample.test", "ann@example.test"}, // a fullwidth letter in the domain is folded
		{"ann@localhost", "ann@localhost"},
		{"\u0430\u043d\u043d\u0430@example.test", "\u0430\u043d\u043d\u0430@example.test"}, // all Cyrillic: a real address
	} {
		var v Validation
		got := normalizeEmail(&v, "email", c.in)
		if err := v.Err(); err != nil {
			t.Errorf("%+q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%+q normalised to %+q, want %+q", c.in, got, c.want)
		}
	}
}

// TestEmailLookalikesRefused: characters that hide, reorder the text around them, or pass for
// letters of another script make an address that looks like another one; they are refused.
func TestEmailLookalikesRefused(t *testing.T) {
	for _, c := range []struct{ in, message string }{
		{"ann\u200b@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"ann@exam\u202eple.test", "must not contain control, invisible or bidirectional-override characters"},
		{"ann\u2066@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"\ufeffann@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"an\u00adn@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"ann\u00a0@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"ann\x01@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"ann\u3164@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"a\ufe0fnn@example.test", "must not contain control, invisible or bidirectional-override characters"},
		{"\u0430nn@example.test", "must not mix letters of different scripts"},     // Cyrillic а among Latin
		{"ann@p\u0430ypal.example", "must not mix letters of different scripts"},   // in the domain
		{"ann@xn--pypal-4ve.example", "must not mix letters of different scripts"}, // the same in Punycode
		{"\uff41nn@example.test", "must not contain compatibility characters such as fullwidth letters"},
		{"ann\xff@example.test", "must be valid UTF-8"},
		{"ann@exa_mple.test", "must be a valid email address"},
		{"ann@", "must be a valid email address"},
	} {
		var v Validation
		normalizeEmail(&v, "email", c.in)
		if diff := cmp.Diff(Validation{{Field: "email", Message: c.message}}, v); diff != "" {
			t.Errorf("%+q (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestCleanTextKeepsWholeCharacters(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"curl/8.5", 512, "curl/8.5"},
		{"ab\u00e9", 3, "ab"}, // é is two bytes: cut before it, not inside it
		{"ab\u00e9", 4, "ab\u00e9"},
		{"a\xffb\xc3", 512, "a\ufffdb\ufffd"},
		{"a\x00b\tc\u0085d", 512, "abcd"},
		{"\xff\xff", 4, "\ufffd"},
	} {
		got := CleanText(c.in, c.max)
		if got != c.want {
			t.Errorf("CleanText(%+q, %d) = %+q, want %+q", c.in, c.max, got, c.want)
		}
	}
}
