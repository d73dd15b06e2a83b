package graphql

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed explorer
var explorerFiles embed.FS

// explorerCSP lets the page load its own script and style and post to its own origin, and nothing
// from anywhere else.
const explorerCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func explorerPage(c echo.Context) error {
	return serveExplorerFile(c, "index.html", echo.MIMETextHTMLCharsetUTF8)
}

func explorerAsset(name, contentType string) echo.HandlerFunc {
	return func(c echo.Context) error { return serveExplorerFile(c, name, contentType) }
}

func serveExplorerFile(c echo.Context, name, contentType string) error {
	b, err := explorerFiles.ReadFile("explorer/" + name)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Security-Policy", explorerCSP)
	return c.Blob(http.StatusOK, contentType, b)
}
