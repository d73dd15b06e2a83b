// Package mail renders Latch's emails from templates and hands them to a delivery driver: SMTP for production,
// the log for development, and an in-memory inbox that the sandbox API reads.
package mail

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/latch-auth/latch/templates"
)

// Message is one rendered email, ready for a Sender. From, when set, replaces the sender's configured
// From (a tenant's own address).
type Message struct {
	From, To, Subject, Text, HTML string
	// ID names the message (the outbox row), so every copy of it carries the same Message-ID; "" for
	// a fresh one per send.
	ID string
	// Locale is the language of the templates it was rendered from ("" for the English ones), for the
	// log.
	Locale string
	// Purpose is the template the message was rendered from (login_code, password_changed ...) and
	// Code the code it carries ("" for none): senders ignore both; the sandbox inbox shows them, so a
	// tester reads the code without parsing the text.
	Purpose, Code string
}

// Data is what templates can use.
type Data struct {
	Email        string
	Code         string
	ValidMinutes int
	ValidHours   int  // ValidMinutes in whole hours, for codes that live that long (invitations)
	Replaced     bool // a newer code replaced an earlier one, which no longer works
	// Time is when what the email tells of happened; templates show it in UTC.
	Time    time.Time
	AppName string
	// Locale is the language tag the templates are chosen by (the user's), then FallbackLocale (the
	// tenant's), then English; see Renderer.Render. "" is none.
	Locale, FallbackLocale string
	// IP and Device describe the client that caused a security notice: an address and a short,
	// sanitised name of its browser and system. "" when unknown; templates say so.
	IP, Device string
	// ByOperator says an operator made the change a notice tells of (the admin API, the command
	// line), not the user: IP and Device are then "".
	ByOperator bool
	// Tenant is the tenant of the recipient, for the log line of the send; templates need not use it.
	Tenant string
	// NewEmail, on the notice of an email change, is the address the account moved to.
	NewEmail string
}

// DefaultAppName is mail.app_name's default: the product name when neither the tenant nor the
// configuration names one.
const DefaultAppName = "Latch"

// The message names; the lead's code and the template directory must agree on them.
const (
	SignupCode        = "signup_code"
	LoginCode         = "login_code"
	ResetCode         = "reset_code"
	AlreadyRegistered = "already_registered"
	PasswordChanged   = "password_changed"
	// Invitation carries a sign-up code to an address an operator invited.
	Invitation = "invitation"
	// TOTPEnabled and TOTPDisabled tell a user their authenticator app was turned on or off.
	TOTPEnabled  = "totp_enabled"
	TOTPDisabled = "totp_disabled"
	// EmailChangeCode carries the code confirming an email change to the new address; EmailTaken
	// goes there instead when the address already has an account in the tenant, and EmailChanged
	// tells the old address once the change is made.
	EmailChangeCode = "email_change_code"
	EmailTaken      = "email_taken"
	EmailChanged    = "email_changed"
	// DeleteAccountCode carries the code confirming a user's deletion of their own account.
	DeleteAccountCode = "delete_account_code"
)

var names = []string{SignupCode, LoginCode, ResetCode, AlreadyRegistered, PasswordChanged, Invitation, TOTPEnabled, TOTPDisabled,
	EmailChangeCode, EmailTaken, EmailChanged, DeleteAccountCode}

// ErrUnknownTemplate is returned by Render for a name outside Names().
var ErrUnknownTemplate = errors.New("mail: unknown template")

var (
	// ErrNotATemplate is a file in the template directory whose name is no template's.
	ErrNotATemplate = errors.New("not a template")
	// ErrIncomplete is a language's email missing one of its three files.
	ErrIncomplete = errors.New("missing")
)

// TemplateError reports which template file could not be read, parsed or executed, or is misnamed.
type TemplateError struct {
	File string
	Err  error
	// Want, for a file named like a template in a language, is the name it must have.
	Want string
}

func (e *TemplateError) Error() string {
	if e.Want != "" {
		return fmt.Sprintf("mail template %s: %v: a template in another language must be named %s", e.File, e.Err, e.Want)
	}
	return fmt.Sprintf("mail template %s: %v", e.File, e.Err)
}
func (e *TemplateError) Unwrap() error { return e.Err }

type messageTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// The three files of one email, by the suffix that ends their names.
var parts = []string{".subject.txt", ".txt", ".html"}

// localePattern is a BCP 47-shaped language tag, as tenants' locales are.
var localePattern = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// Renderer turns a message name and Data into a Message. It is safe for concurrent use.
type Renderer struct {
	// byName holds per message name its templates per lower-cased locale; "" is the English set
	// every name has.
	byName map[string]map[string]messageTemplates
	// AppName fills Data.AppName when the caller leaves it empty (mail.app_name). Set it before the
	// renderer is shared.
	AppName string
}

// NewRenderer parses all templates once, from the embedded set; when overrideDir != "" a file of the same name in
// that directory replaces the embedded one, and may add languages. A file is <name>.subject.txt, <name>.txt or
// <name>.html for English, <name>.<locale>.subject.txt ... for another language (login_code.de.html); a
// language's email needs all three. It fails if a template is missing, does not parse, or cannot render
// sample data, and if the directory holds a file that is not a template (a misspelt name, login_code_de.txt),
// so that a broken override stops start-up rather than the first email, or goes unnoticed.
func NewRenderer(overrideDir string) (*Renderer, error) {
	// variants holds per name the languages found, lower-cased, with the spelling of their files; ""
	// (English) always.
	variants := map[string]map[string]string{}
	for _, name := range names {
		variants[name] = map[string]string{"": ""}
	}
	// add records a language; two spellings of one (de and DE) would make which one is used a matter
	// of chance.
	add := func(path, name, locale string) error {
		key := strings.ToLower(locale)
		if had, ok := variants[name][key]; ok && had != locale {
			return &TemplateError{File: path, Err: fmt.Errorf("%w: the language is spelled %s elsewhere; spell it one way",
				ErrNotATemplate, had)}
		}
		variants[name][key] = locale
		return nil
	}
	embedded, err := fs.ReadDir(templates.FS, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range embedded {
		name, locale, _, ok := parseFileName(e.Name())
		if !ok {
			return nil, misnamed(e.Name(), e.Name())
		}
		if err := add(e.Name(), name, locale); err != nil {
			return nil, err
		}
	}
	if overrideDir != "" {
		info, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("mail template directory: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("mail template directory %s: not a directory", overrideDir)
		}
		entries, err := os.ReadDir(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("mail template directory: %w", err)
		}
		var problems []error
		for _, e := range entries {
			// Dot files are an editor's or a mount's (Kubernetes' ..data), and directories are not read.
			if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
				continue
			}
			name, locale, _, ok := parseFileName(e.Name())
			if !ok {
				problems = append(problems, misnamed(filepath.Join(overrideDir, e.Name()), e.Name()))
				continue
			}
			if err := add(filepath.Join(overrideDir, e.Name()), name, locale); err != nil {
				problems = append(problems, err)
			}
		}
		if err := errors.Join(problems...); err != nil {
			return nil, err
		}
	}
	load := func(file string) (string, error) {
		if overrideDir != "" {
			b, err := os.ReadFile(filepath.Join(overrideDir, file))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", &TemplateError{File: filepath.Join(overrideDir, file), Err: err}
			}
		}
		b, err := fs.ReadFile(templates.FS, file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Another language's email in one language only would be worse than English.
				err = fmt.Errorf("%w: an email needs its %s, %s and %s", ErrIncomplete, parts[0], parts[1], parts[2])
			}
			return "", &TemplateError{File: file, Err: err}
		}
		return string(b), nil
	}

	r := &Renderer{byName: make(map[string]map[string]messageTemplates, len(names)), AppName: DefaultAppName}
	for _, name := range names {
		r.byName[name] = map[string]messageTemplates{}
		for key, locale := range variants[name] {
			base := name
			if locale != "" {
				base += "." + locale
			}
			var mt messageTemplates
			var err error
			if mt.subject, err = parseText(load, base+".subject.txt"); err != nil {
				return nil, err
			}
			if mt.text, err = parseText(load, base+".txt"); err != nil {
				return nil, err
			}
			if mt.html, err = parseHTML(load, base+".html"); err != nil {
				return nil, err
			}
			r.byName[name][key] = mt
		}
	}

	sample := Data{Email: "user@example.com", Code: "123456", ValidMinutes: 10, Replaced: true, Time: time.Unix(0, 0),
		IP: "192.0.2.1", Device: "Firefox 120 on Linux"}
	for _, name := range names {
		for locale := range r.byName[name] {
			sample.Locale = locale
			if _, err := r.Render(name, sample.Email, sample); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// parseFileName splits a template file's name into its message name, locale ("" for English) and part.
func parseFileName(file string) (name, locale, part string, ok bool) {
	for _, p := range parts {
		if base, found := strings.CutSuffix(file, p); found {
			name, locale, _ = strings.Cut(base, ".")
			if !slices.Contains(names, name) || (locale != "" && !localePattern.MatchString(locale)) {
				return "", "", "", false
			}
			return name, locale, p, true
		}
	}
	return "", "", "", false
}

// misnamed explains why parseFileName refused a file, guessing the name meant (login_code_de.txt for
// login_code.de.txt).
func misnamed(path, file string) *TemplateError {
	base, ext := file, ""
	for _, p := range parts {
		if b, found := strings.CutSuffix(file, p); found {
			base, ext = b, p
			break
		}
	}
	terr := &TemplateError{File: path, Err: fmt.Errorf("%w: files are <name>%s, <name>%s and <name>%s, with .<locale> after "+
		"the name for another language (login_code.de.html), and the names are %s", ErrNotATemplate, parts[0], parts[1], parts[2],
		strings.Join(names, ", "))}
	for _, name := range names {
		rest, found := strings.CutPrefix(base, name)
		if !found || len(rest) < 2 || ext == "" {
			continue
		}
		if locale := rest[1:]; (rest[0] == '_' || rest[0] == '-') && localePattern.MatchString(locale) {
			terr.Err, terr.Want = ErrNotATemplate, name+"."+locale+ext
		}
	}
	return terr
}

func parseText(load func(string) (string, error), file string) (*texttemplate.Template, error) {
	src, err := load(file)
	if err != nil {
		return nil, err
	}
	t, err := texttemplate.New(file).Parse(src)
	if err != nil {
		return nil, &TemplateError{File: file, Err: err}
	}
	return t, nil
}

func parseHTML(load func(string) (string, error), file string) (*htmltemplate.Template, error) {
	src, err := load(file)
	if err != nil {
		return nil, err
	}
	t, err := htmltemplate.New(file).Parse(src)
	if err != nil {
		return nil, &TemplateError{File: file, Err: err}
	}
	return t, nil
}

// pick chooses the templates of name for language tags in order of preference: for each, the tag
// itself ("pt-BR"), then each shorter prefix of it ("pt"); then English. Tags compare without regard
// to case; an operator's <name>.en.* templates, if any, come before the unsuffixed ones for "en".
func (r *Renderer) pick(name string, locales ...string) (messageTemplates, string, bool) {
	byLocale, ok := r.byName[name]
	if !ok {
		return messageTemplates{}, "", false
	}
	for _, locale := range locales {
		for tag := strings.ToLower(locale); tag != ""; {
			if mt, ok := byLocale[tag]; ok {
				return mt, tag, true
			}
			i := strings.LastIndexByte(tag, '-')
			if i < 0 {
				// The unsuffixed templates are English: a user who asked for English gets it, not their
				// tenant's language.
				if tag == "en" {
					return byLocale[""], "", true
				}
				break
			}
			tag = tag[:i]
		}
	}
	return byLocale[""], "", true
}

// Render renders message name for recipient to, in the language of d.Locale when there are templates of
// that name in it, else in d.FallbackLocale's, else in English. Empty d.Email defaults to to, empty
// d.AppName to r.AppName.
func (r *Renderer) Render(name string, to string, d Data) (Message, error) {
	mt, locale, ok := r.pick(name, d.Locale, d.FallbackLocale)
	if !ok {
		return Message{}, fmt.Errorf("%w: %q", ErrUnknownTemplate, name)
	}
	if d.Email == "" {
		d.Email = to
	}
	if d.AppName == "" {
		d.AppName = cmp.Or(r.AppName, DefaultAppName)
	}

	file := name
	if locale != "" {
		file += "." + locale
	}
	var subject, text, html bytes.Buffer
	if err := mt.subject.Execute(&subject, d); err != nil {
		return Message{}, &TemplateError{File: file + ".subject.txt", Err: err}
	}
	if err := mt.text.Execute(&text, d); err != nil {
		return Message{}, &TemplateError{File: file + ".txt", Err: err}
	}
	if err := mt.html.Execute(&html, d); err != nil {
		return Message{}, &TemplateError{File: file + ".html", Err: err}
	}
	return Message{
		To:      to,
		Purpose: name,
		Code:    d.Code,
		// A subject is one header line whatever the template's line breaks.
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
		Locale:  locale,
	}, nil
}
