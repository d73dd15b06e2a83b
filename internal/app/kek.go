package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/seal"
	"github.com/latch-auth/latch/internal/store"
)

// ErrNoEncryptionKey stops a Postgres deployment that names no key-encryption key. A key generated
// into the database would protect nothing, and one generated on this machine alone would leave every
// other instance unable to read what this one sealed.
var ErrNoEncryptionKey = errors.New("secrets.encryption_key or secrets.encryption_key_file is required with Postgres " +
	"(make one with `openssl rand -base64 32`; or name a file in secrets.encryption_key_file and one is generated there, " +
	"to be copied to every instance)")

// LoadKeyring returns the key-encryption key: configured (secrets.encryption_key), read from
// secrets.encryption_key_file (generated there when the file does not exist yet), or, on SQLite with
// neither, generated into a file next to the database, so a copy of the database file alone does not
// carry the key that opens it.
func LoadKeyring(cfg config.Config, log *slog.Logger) (*seal.Keyring, error) {
	if cfg.Secrets.EncryptionKey != "" {
		s, err := seal.ParseSecret(cfg.Secrets.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("secrets.encryption_key: %w", err)
		}
		return seal.NewKeyring(s, nil, nil)
	}
	path := cfg.Secrets.EncryptionKeyFile
	if path == "" {
		dialect, dsn, err := store.ParseURL(cfg.Database.URL)
		if err != nil {
			return nil, err
		}
		if dialect != store.SQLite {
			return nil, ErrNoEncryptionKey
		}
		file, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
		if file == "" || file == ":memory:" {
			// A database that dies with the process needs no key that outlives it.
			return newKeyring()
		}
		path = file + ".kek"
	}
	k, err := readKeyring(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = generateKeyFile(path); err == nil || errors.Is(err, fs.ErrExist) {
			log.Warn("generated a key-encryption key; keep it with the database's backups but never inside them, and give every instance the same one (production should set secrets.encryption_key)",
				"file", path)
			k, err = readKeyring(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secrets.encryption_key_file: %w", err)
	}
	return k, nil
}

func newKeyring() (*seal.Keyring, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return seal.NewKeyring(seal.Secret{Version: 1, Material: []byte(base64.StdEncoding.EncodeToString(b))}, nil, nil)
}

// readKeyring reads a key file: one "[v<N>:]material" a line, the current one first; blank lines and
// lines starting with # are skipped.
func readKeyring(path string) (*seal.Keyring, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var secrets []seal.Secret
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := seal.ParseSecret(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		secrets = append(secrets, s)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return seal.NewKeyring(secrets[0], secrets[1:], nil)
}

// generateKeyFile writes a new key, readable by its owner alone, to a file that must not exist yet.
// The file appears whole or not at all (written aside, then linked into place, which fails if another
// process got there first), so instances starting together all read the same, complete key.
func generateKeyFile(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".latch-kek-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "# Latch key-encryption key. Newest version first; keep older ones below while values sealed under them remain.\nv1:%s\n",
		base64.StdEncoding.EncodeToString(b))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}
