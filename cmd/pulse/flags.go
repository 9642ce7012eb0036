package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// parseFlags parses args, then PULSE_* environment variables, then the YAML
// file named by --config: a flag wins over its variable, which wins over the
// file, which wins over the default.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string) error {
	fs.String("config", "", "YAML file of settings, keys named like the flags (e.g. data-dir: /var/lib/pulse)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\nFlags (each also read from the environment variable shown, and from --config):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			env := "PULSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]%s\n      %s\n", f.Name, env, def, f.Usage)
		})
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("PULSE"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ffyaml.Parser),
	)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	return err
}
