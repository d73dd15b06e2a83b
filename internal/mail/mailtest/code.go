package mailtest

import "github.com/latch-auth/latch/internal/mail/mimecode"

// ExtractCode returns the first six-digit word of text, by the same rule the load generator reads
// codes with (see mimecode.ExtractCode).
func ExtractCode(text string) (string, bool) { return mimecode.ExtractCode(text) }
