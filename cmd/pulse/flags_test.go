package main

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestFlagPrecedence checks flag > environment > config file > default.
func TestFlagPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "pulse.yaml")
	if err := os.WriteFile(cfg, []byte("http: file:1\ndata-dir: /from/file\npartitions: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PULSE_HTTP", "env:1")
	t.Setenv("PULSE_DATA_DIR", "/from/env")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	httpAddr := fs.String("http", "default:1", "")
	dataDir := fs.String("data-dir", "./default", "")
	partitions := fs.Int("partitions", 8, "")
	logLevel := fs.String("log-level", "info", "")
	if err := parseFlags(fs, []string{"--config", cfg, "--http", "flag:1"}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"flag beats env and file", *httpAddr, "flag:1"},
		{"env beats file", *dataDir, "/from/env"},
		{"file beats default", strconv.Itoa(*partitions), "3"},
		{"default", *logLevel, "info"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}
