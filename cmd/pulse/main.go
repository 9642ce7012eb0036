// Command pulse is real-time event analytics in one binary. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `pulse: real-time event analytics in one binary

Usage:
  pulse run [flags]            run Pulse (add --demo for a built-in city simulator)
  pulse loadgen city [flags]   send generated city readings to a running Pulse
  pulse pipeline validate FILE...  check pipeline files, reporting every error with its line
  pulse pipeline list          list the built-in pipelines
  pulse version                print the version

Run "pulse <command> --help" for the flags of a command.
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("missing command")
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:])
	case "loadgen":
		return loadgenCmd(ctx, args[1:])
	case "pipeline":
		return pipelineCmd(ctx, args[1:])
	case "version":
		fmt.Println("pulse", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
