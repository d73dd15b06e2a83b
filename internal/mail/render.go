// Package mail renders Latch's emails from templates and hands them to a delivery driver: SMTP for production,
// the log for development, and an in-memory inbox that the sandbox API reads.
package mail

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
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
}

// Data is what templates can use.
type Data struct {
	Email        string
	Code         string
	ValidMinutes int
	ValidHours   int  // ValidMinutes in whole hours, for codes that live that long (invitations)
	Replaced     bool // a newer code replaced an earlier one, which no longer works
	Time         time.Time
	AppName      string
	// Locale is the language tag of the tenant the email is for ("" when it names none); templates
	// may use it, and per-locale templates will choose by it.
	Locale string
}

// DefaultAppName fills Data.AppName when the caller leaves it empty.
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
)

var names = []string{SignupCode, LoginCode, ResetCode, AlreadyRegistered, PasswordChanged, Invitation}

// ErrUnknownTemplate is returned by Render for a name outside Names().
var ErrUnknownTemplate = errors.New("mail: unknown template")

// TemplateError reports which template file could not be read, parsed or executed.
type TemplateError struct {
	File string
	Err  error
}

func (e *TemplateError) Error() string { return fmt.Sprintf("mail template %s: %v", e.File, e.Err) }
func (e *TemplateError) Unwrap() error { return e.Err }

type messageTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Renderer turns a message name and Data into a Message. It is safe for concurrent use.
type Renderer struct {
	byName map[string]messageTemplates
}

// NewRenderer parses all templates once, from the embedded set; when overrideDir != "" a file of the same name in
// that directory replaces the embedded one. It fails if a template is missing, does not parse, or cannot render
// sample data, so that a broken override stops start-up rather than the first email.
func NewRenderer(overrideDir string) (*Renderer, error) {
	if overrideDir != "" {
		info, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("mail template directory: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("mail template directory %s: not a directory", overrideDir)
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
			return "", &TemplateError{File: file, Err: err}
		}
		return string(b), nil
	}

	r := &Renderer{byName: make(map[string]messageTemplates, len(names))}
	for _, name := range names {
		var mt messageTemplates
		var err error
		if mt.subject, err = parseText(load, name+".subject.txt"); err != nil {
			return nil, err
		}
		if mt.text, err = parseText(load, name+".txt"); err != nil {
			return nil, err
		}
		if mt.html, err = parseHTML(load, name+".html"); err != nil {
			return nil, err
		}
		r.byName[name] = mt
	}

	sample := Data{Email: "user@example.com", Code: "123456", ValidMinutes: 10, Replaced: true, Time: time.Unix(0, 0)}
	for _, name := range names {
		if _, err := r.Render(name, sample.Email, sample); err != nil {
			return nil, err
		}
	}
	return r, nil
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

// Render renders message name for recipient to. Empty d.Email defaults to to, empty d.AppName to DefaultAppName.
func (r *Renderer) Render(name string, to string, d Data) (Message, error) {
	mt, ok := r.byName[name]
	if !ok {
		return Message{}, fmt.Errorf("%w: %q", ErrUnknownTemplate, name)
	}
	if d.Email == "" {
		d.Email = to
	}
	if d.AppName == "" {
		d.AppName = DefaultAppName
	}

	var subject, text, html bytes.Buffer
	if err := mt.subject.Execute(&subject, d); err != nil {
		return Message{}, &TemplateError{File: name + ".subject.txt", Err: err}
	}
	if err := mt.text.Execute(&text, d); err != nil {
		return Message{}, &TemplateError{File: name + ".txt", Err: err}
	}
	if err := mt.html.Execute(&html, d); err != nil {
		return Message{}, &TemplateError{File: name + ".html", Err: err}
	}
	return Message{
		To: to,
		// A subject is one header line whatever the template's line breaks.
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}
