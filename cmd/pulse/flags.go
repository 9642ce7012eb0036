package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// defaultText is what --help prints as a flag's default where its zero
// value means "not set, take it from elsewhere" rather than 0s.
var defaultText = map[string]string{
	"max-out-of-orderness": "from each pipeline",
	"idle-timeout":         "from each pipeline",
	"live-interval":        "from each output's emit.partials; live views 500ms",
	"live-push":            "--live-interval, else 500ms",
}

// commandFlagSets builds the flag set of every command that reads
// --config, so that one config file can serve them all: a key that is a
// flag of another command is ignored, any other unknown key is an error.
var commandFlagSets = []func() *flag.FlagSet{
	func() *flag.FlagSet { return runFlagSet(new(runFlags)) },
	func() *flag.FlagSet { return loadgenFlagSet(new(loadgenFlags)) },
	func() *flag.FlagSet { return pipelineListFlagSet(new(string)) },
}

// parseFlags parses args, then PULSE_* environment variables, then the YAML
// file named by --config: a flag wins over its variable, which wins over the
// file, which wins over the default. --help prints the usage and returns
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string) error {
	fs.String("config", "", "YAML file of settings, keys named like the flags (e.g. data-dir: /var/lib/pulse); one file can serve pulse run, pulse loadgen and pulse pipeline list")
	fs.Usage = func() { printUsage(fs.Output(), fs, synopsis) }
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("PULSE"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(func(r io.Reader, set func(name, value string) error) error {
			return ffyaml.Parser(r, func(name, value string) error {
				if fs.Lookup(name) == nil {
					return unknownKey(name)
				}
				return set(name, value)
			})
		}),
	)
	if uk := (*unknownKeyError)(nil); errors.As(err, &uk) {
		return fmt.Errorf("--config %s: %w", fs.Lookup("config").Value, uk)
	}
	return err
}

type unknownKeyError struct{ key, hint string }

func (e *unknownKeyError) Error() string { return fmt.Sprintf("unknown key %q (%s)", e.key, e.hint) }

// unknownKey is nil for a config key that another command defines, and an
// error naming the key, with the nearest flag as a hint, otherwise.
func unknownKey(name string) error {
	var names []string
	for _, other := range commandFlagSets {
		fs := other()
		if fs.Lookup(name) != nil {
			return nil
		}
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	hint := "keys are the flags of pulse run, pulse loadgen city and pulse pipeline list, without the dashes"
	if s := pipeline.Suggest(name, names); s != "" {
		hint = "did you mean " + s + "?"
	}
	return &unknownKeyError{key: name, hint: hint}
}

func printUsage(out io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(out, "Usage: %s\n", synopsis)
	if !hasFlags(fs) {
		return
	}
	fmt.Fprintf(out, "\nFlags (each also read from the environment variable shown, and from --config):\n")
	fs.VisitAll(func(f *flag.Flag) {
		env := "PULSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		def := ""
		if text, ok := defaultText[f.Name]; ok {
			def = fmt.Sprintf(" (default: %s)", text)
		} else if f.DefValue != "" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s  [%s]%s\n      %s\n", f.Name, env, def, f.Usage)
	})
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
