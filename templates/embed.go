// Package templates holds the email templates compiled into the binary. A deployment can replace any of them
// file by file from a directory, and add languages (see mail.NewRenderer).
package templates

import "embed"

// FS holds, per message name, <name>.subject.txt and <name>.txt (text/template) and <name>.html (html/template)
// in English, and <name>.<locale>.subject.txt, <name>.<locale>.txt and <name>.<locale>.html in other languages.
//
//go:embed *.txt *.html
var FS embed.FS
