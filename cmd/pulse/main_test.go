package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func runDispatch(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := dispatch(context.Background(), &out, &errOut, args)
	return out.String(), errOut.String(), err
}

// TestHelpAndVersion checks that every subcommand answers --help with its
// usage instead of taking it for an argument, and that --version works.
func TestHelpAndVersion(t *testing.T) {
	for _, c := range []struct {
		args       []string
		wantOut    string
		wantErrOut string
	}{
		{[]string{"pipeline", "validate", "--help"}, "", "Usage: pulse pipeline validate FILE..."},
		{[]string{"pipeline", "validate", "-h"}, "", "Usage: pulse pipeline validate FILE..."},
		{[]string{"pipeline", "list", "--help"}, "", "--pipelines  [PULSE_PIPELINES]"},
		{[]string{"pipeline", "--help"}, "pulse pipeline list [--pipelines DIR]", ""},
		{[]string{"version", "--help"}, "", "Usage: pulse version"},
		{[]string{"--help"}, "Usage:", ""},
		{[]string{"help"}, "Usage:", ""},
		{[]string{"version"}, "pulse ", ""},
		{[]string{"--version"}, "pulse ", ""},
	} {
		out, errOut, err := runDispatch(t, c.args...)
		if err != nil {
			t.Errorf("%q: %v\n%s", c.args, err, errOut)
			continue
		}
		if !strings.Contains(out, c.wantOut) || !strings.Contains(errOut, c.wantErrOut) {
			t.Errorf("%q: stdout %q, stderr %q; want %q in stdout and %q in stderr", c.args, out, errOut, c.wantOut, c.wantErrOut)
		}
		if strings.Contains(errOut, "no such file") {
			t.Errorf("%q took a flag for a file: %s", c.args, errOut)
		}
	}
	if _, errOut, err := runDispatch(t, "pipeline", "validate", "--", "--help"); err == nil || !strings.Contains(errOut, "--help: open --help: no such file") {
		t.Errorf("a file named --help after --: %v %q", err, errOut)
	}
}

func TestDescribeVersion(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.1"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-12-01T09:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	for _, c := range []struct {
		name  string
		stamp stamp
		info  *debug.BuildInfo
		want  string
	}{
		{"build info only", stamp{}, vcs, "v0.3.1 (commit 0123456789ab, modified, 2026-12-01T09:00:00Z, go1.26.8)"},
		{"stamp wins", stamp{"v1.0.0", "fedcba9876543210", "2026-12-02T00:00:00Z", "false"}, vcs, "v1.0.0 (commit fedcba987654, 2026-12-02T00:00:00Z, go1.26.8)"},
		{"devel without vcs", stamp{}, devel, "dev (go1.26.8)"},
		{"stamped devel", stamp{version: "8d67c97-dirty"}, devel, "8d67c97-dirty (go1.26.8)"},
		{"no build info", stamp{}, nil, "dev"},
	} {
		if got := describeVersion(c.stamp, c.info); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestPipelineListHonoursPipelines checks that pulse pipeline list shows the
// pipelines of --pipelines (and of PULSE_PIPELINES), as pulse run runs them.
func TestPipelineListHonoursPipelines(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "shop.yaml"), goodPipeline)
	want := "shop (" + filepath.Join(dir, "shop.yaml") + "): reads clicks\n"

	out, errOut, err := runDispatch(t, "pipeline", "list", "--pipelines", dir)
	if err != nil || !strings.Contains(out, want) || !strings.Contains(out, "city (builtin:city.yaml)") {
		t.Errorf("--pipelines: %v %s\n%s", err, errOut, out)
	}
	t.Setenv("PULSE_PIPELINES", dir)
	if out, _, err := runDispatch(t, "pipeline", "list"); err != nil || !strings.Contains(out, want) {
		t.Errorf("PULSE_PIPELINES: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "bad.yaml"), badPipeline)
	if _, _, err := runDispatch(t, "pipeline", "list"); err == nil || !strings.Contains(err.Error(), "pulse pipeline validate") {
		t.Errorf("invalid pipeline in --pipelines: %v", err)
	}
	if _, _, err := runDispatch(t, "pipeline", "list", dir); err == nil {
		t.Error("no error for a directory given without --pipelines")
	}
}

// TestSharedConfigFile checks that one config file serves pulse run,
// pulse loadgen city and pulse pipeline list, and that a key no command
// knows is still reported, with the nearest flag.
func TestSharedConfigFile(t *testing.T) {
	dir, pipes := t.TempDir(), t.TempDir()
	shared := filepath.Join(dir, "pulse.yaml")
	writeFile(t, shared, "data-dir: /var/lib/pulse\npartitions: 3\nrate: 500\nsensors: 50\npipelines: "+pipes+"\n")
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "data-dri: /var/lib/pulse\n")

	lf, err := parseLoadgen([]string{"--config", shared})
	if err != nil || lf.cfg.Rate != 500 || lf.cfg.Sensors != 50 {
		t.Errorf("loadgen with a shared config: %v %+v", err, lf)
	}
	var rf runFlags
	if err := parseFlags(runFlagSet(&rf), []string{"--config", shared}, "pulse run"); err != nil || rf.dataDir != "/var/lib/pulse" || rf.partitions != 3 || rf.pipelinesDir != pipes {
		t.Errorf("run with a shared config: %v %+v", err, rf)
	}
	if _, errOut, err := runDispatch(t, "pipeline", "list", "--config", shared); err != nil {
		t.Errorf("pipeline list with a shared config: %v %s", err, errOut)
	}

	want := `--config ` + typo + `: unknown key "data-dri" (did you mean data-dir?)`
	if _, err := parseLoadgen([]string{"--config", typo}); err == nil || err.Error() != want {
		t.Errorf("loadgen typo: got %v, want %s", err, want)
	}
	if err := parseFlags(runFlagSet(new(runFlags)), []string{"--config", typo}, "pulse run"); err == nil || err.Error() != want {
		t.Errorf("run typo: got %v, want %s", err, want)
	}
}

// TestUsageDefaults checks the defaults --help prints: the override flags
// take their value from each pipeline unless given.
func TestUsageDefaults(t *testing.T) {
	fs := runFlagSet(new(runFlags))
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	if err := parseFlags(fs, []string{"--help"}, "pulse run [flags]"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	usage := buf.String()
	for _, want := range []string{
		"--max-out-of-orderness  [PULSE_MAX_OUT_OF_ORDERNESS] (default: from each pipeline)\n",
		"--idle-timeout  [PULSE_IDLE_TIMEOUT] (default: from each pipeline)\n",
		"--live-interval  [PULSE_LIVE_INTERVAL] (default: from each output's emit.partials; live views 500ms)\n",
		"--live-push  [PULSE_LIVE_PUSH] (default: --live-interval, else 500ms)\n",
		"--shuffle-interval  [PULSE_SHUFFLE_INTERVAL] (default 10ms)\n",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	if strings.Contains(usage, "(default 0s)") {
		t.Errorf("usage prints a default of 0s:\n%s", usage)
	}
}

// TestFsyncFlagChecked: an unknown --fsync is refused, naming the values
// to use.
func TestFsyncFlagChecked(t *testing.T) {
	err := runCmd(context.Background(), []string{"--data-dir", t.TempDir(), "--fsync", "always"})
	if err == nil || !strings.Contains(err.Error(), `--fsync "always": use none, interval or batch`) {
		t.Errorf("--fsync always: %v", err)
	}
}

func TestMain(m *testing.M) {
	// The tests set PULSE_* variables themselves; none from the caller's
	// environment may leak in.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PULSE_") {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}
