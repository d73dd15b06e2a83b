// Package migrations holds the versioned SQL schema, one directory per SQL dialect, embedded in the
// binary so `latch serve` and `latch migrate` need nothing on disk.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect returns the migrations of one dialect ("postgres" or "sqlite").
func Dialect(name string) (fs.FS, error) {
	return fs.Sub(files, name)
}
