// Command pulse is real-time event analytics in one binary. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `pulse: real-time event analytics in one binary

Usage:
  pulse run [flags]            run Pulse (add --demo for a built-in city simulator)
  pulse loadgen city [flags]   send generated city readings to a running Pulse
  pulse pipeline validate FILE...  check pipeline files, reporting every error with its line
  pulse pipeline list [--pipelines DIR]  list the built-in pipelines and those in DIR
  pulse db migrate [flags]     run the result database's migrations alone (--db URL)
  pulse version                print the version (also pulse --version)

Run "pulse <command> --help" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Stdout, os.Stderr, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

// dispatch runs the command args name. A --help that printed a command's
// usage is not an error.
func dispatch(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	err := command(ctx, stdout, stderr, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func command(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("missing command")
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:])
	case "loadgen":
		return loadgenCmd(ctx, args[1:])
	case "pipeline":
		return pipelineMain(ctx, stdout, stderr, args[1:])
	case "db":
		return dbMain(ctx, stdout, stderr, args[1:])
	case "version", "-version", "--version":
		fs := flag.NewFlagSet("pulse version", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { printUsage(stderr, fs, "pulse version") }
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("version takes no arguments")
		}
		fmt.Fprintln(stdout, "pulse", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
