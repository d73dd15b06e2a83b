package auth

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/latch-auth/latch/internal/mail"
)

// noticeData is the template data of a security notice: when it happened and the client that did it,
// so the owner can tell their own doing from someone else's.
func noticeData(email string, at time.Time, meta Meta) mail.Data {
	return mail.Data{Email: email, Time: at, IP: noticeIP(meta.IP), Device: describeDevice(meta.UserAgent)}
}

// Notices of a change already made are bounded per user and hour: someone holding a session and the
// password could otherwise turn the authenticator on and off to flood the mailbox.
const noticesPerHour = 20

// sendChangeNotice queues a notice of a change already committed (the authenticator turned on or
// off). It runs after the change's transaction, so a notice that cannot be queued is logged: the
// request that made the change still succeeds, as the change happened.
func (s *Service) sendChangeNotice(ctx context.Context, u User, template string, meta Meta, byOperator bool) {
	tenant, err := s.userTenant(ctx, u.TenantID)
	if err != nil {
		s.log.ErrorContext(ctx, "security notice not queued", "template", template, "err", err)
		return
	}
	now := s.Now()
	d := noticeData(u.Email, now, meta)
	d.ByOperator = byOperator
	_, err = s.store.IssueCode(ctx, IssueCode{UserID: u.ID, Purpose: PurposeNotice, MaxPerHour: noticesPerHour,
		Mail: brandedEmail(tenant, u, template, now.Add(24*time.Hour), d)})
	var lim *LimitError
	switch {
	case errors.As(err, &lim):
		s.log.InfoContext(ctx, "security notice not sent: the user's hourly notices are spent", "template", template)
	case err != nil:
		s.log.ErrorContext(ctx, "security notice not queued", "template", template, "err", err)
	default:
		s.mailQueued()
	}
}

// noticeIP is the client's address as an email may show it: an address that parses, never other
// text that reached Meta.IP.
func noticeIP(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}

// A user agent is the client's free text. An email shows only a description built from known
// words (a browser, its major version, a system), or, for other clients, their product token when it
// is a plain name with a version ("curl/8.4.0"): nothing a client writes can become a sentence, a link
// or markup in the notice.
var (
	productToken = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}/[0-9][0-9.]{0,15}$`)
	browsers     = []struct{ token, name string }{
		// Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"}, {"CriOS/", "Chrome"}, {"Chrome/", "Chrome"},
		{"Version/", "Safari"},
	}
	systems = []struct{ token, name string }{
		// Order matters: Android says Linux, iOS says like Mac OS X.
		{"Windows", "Windows"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Macintosh", "macOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	}
)

// describeDevice names the browser and system a user agent claims ("Firefox 120 on Linux"), or ""
// when it claims nothing recognisable.
func describeDevice(ua string) string {
	ua = strings.TrimSpace(CleanText(ua, maxUserAgentLen))
	var browser, system string
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			browser = b.name
			major := ua[i+len(b.token):]
			if n := strings.IndexFunc(major, func(r rune) bool { return r < '0' || r > '9' }); n >= 0 {
				major = major[:n]
			}
			if major != "" && len(major) <= 4 {
				browser += " " + major
			}
			break
		}
	}
	for _, s := range systems {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return system
	}
	first, _, _ := strings.Cut(ua, " ")
	if productToken.MatchString(first) {
		return first
	}
	return ""
}
