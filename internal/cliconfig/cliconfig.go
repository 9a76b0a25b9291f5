// Package cliconfig stores the CLI's contexts: which MpegFlow server to talk
// to and with which API key. `mpegflow dev` writes one so the CLI works with
// no flags. The file holds a secret, so it is written with mode 0600.
package cliconfig

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Context is one server and the key to use with it.
type Context struct {
	Server string `json:"server"`
	APIKey string `json:"api_key"`
}

// File is the whole configuration file.
type File struct {
	Current  string             `json:"current"`
	Contexts map[string]Context `json:"contexts"`
}

// Path is $MPEGFLOW_CONFIG, else $XDG_CONFIG_HOME/mpegflow/config.json, else
// ~/.config/mpegflow/config.json.
func Path(getenv func(string) string) (string, error) {
	if p := getenv("MPEGFLOW_CONFIG"); p != "" {
		return p, nil
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "mpegflow", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the CLI configuration: %w (set MPEGFLOW_CONFIG)", err)
	}
	return filepath.Join(home, ".config", "mpegflow", "config.json"), nil
}

// Load reads the file at path; a missing file is an empty configuration.
func Load(path string) (File, error) {
	f := File{Contexts: map[string]Context{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read CLI configuration %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("CLI configuration %s is not valid JSON: %w", path, err)
	}
	if f.Contexts == nil {
		f.Contexts = map[string]Context{}
	}
	return f, nil
}

// Save writes the file atomically with mode 0600 (its directory 0700).
func Save(path string, f File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode CLI configuration: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("write CLI configuration: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort: on success the file was renamed away, on failure the error that matters is returned
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write CLI configuration: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write CLI configuration: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write CLI configuration: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write CLI configuration: %w", err)
	}
	return nil
}

// SetCurrent stores ctx under name and makes it current.
func SetCurrent(path, name string, ctx Context) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	f.Contexts[name] = ctx
	f.Current = name
	return Save(path, f)
}

// ErrNoSuchContext is a context name the configuration file does not have.
var ErrNoSuchContext = errors.New("no such context")

// Use makes the stored context name current.
func Use(path, name string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	if _, ok := f.Contexts[name]; !ok {
		return fmt.Errorf("context %q in %s: %w", name, path, ErrNoSuchContext)
	}
	f.Current = name
	return Save(path, f)
}

// Resolve picks the server and key: flags, then the context named by
// contextName (the --context flag, which must exist), then
// MPEGFLOW_SERVER and MPEGFLOW_API_KEY, then the current context. A context
// named explicitly wins over the environment because it was asked for on
// this command line.
func Resolve(getenv func(string) string, flagServer, flagKey, contextName string) (Context, error) {
	c := Context{Server: flagServer, APIKey: flagKey}
	if contextName != "" {
		path, err := Path(getenv)
		if err != nil {
			return c, err
		}
		f, err := Load(path)
		if err != nil {
			return c, err
		}
		named, ok := f.Contexts[contextName]
		if !ok {
			return c, fmt.Errorf("context %q in %s: %w (`mpegflow config get-contexts` lists them)", contextName, path, ErrNoSuchContext)
		}
		c.Server = cmp.Or(c.Server, named.Server)
		c.APIKey = cmp.Or(c.APIKey, named.APIKey)
	}
	if c.Server == "" {
		c.Server = getenv("MPEGFLOW_SERVER")
	}
	if c.APIKey == "" {
		c.APIKey = getenv("MPEGFLOW_API_KEY")
	}
	if c.Server != "" && c.APIKey != "" {
		return c, nil
	}
	path, err := Path(getenv)
	if err != nil {
		return c, err
	}
	f, err := Load(path)
	if err != nil {
		return c, err
	}
	cur, ok := f.Contexts[f.Current]
	if c.Server == "" {
		c.Server = cur.Server
	}
	if c.APIKey == "" {
		c.APIKey = cur.APIKey
	}
	if c.Server == "" || c.APIKey == "" {
		if !ok {
			return c, errors.New("no MpegFlow server configured: run `mpegflow login --server URL` or `mpegflow dev`, or set MPEGFLOW_SERVER and MPEGFLOW_API_KEY, or pass --server and --api-key")
		}
		return c, fmt.Errorf("context %q in %s has no server or API key", f.Current, path)
	}
	return c, nil
}
