package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/pipelines"
)

const pipelineUsage = `Usage:
  pulse pipeline validate FILE...           check pipeline files and print every problem found
  pulse pipeline list [--pipelines DIR]     list the built-in pipelines (and those in DIR) and their outputs

The pipeline file format is described in docs/pipelines.md.
`

func pipelineMain(_ context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pipelineUsage)
		return errors.New("pipeline: missing subcommand")
	}
	switch args[0] {
	case "validate":
		fs := flag.NewFlagSet("pulse pipeline validate", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() {
			printUsage(stderr, fs, "pulse pipeline validate FILE...  (a FILE starting with - goes after --)")
			fmt.Fprint(stderr, "\n"+pipelineUsage)
		}
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return validatePipelines(stdout, stderr, fs.Args())
	case "list":
		var dir string
		fs := pipelineListFlagSet(&dir)
		fs.SetOutput(stderr)
		if err := parseFlags(fs, args[1:], "pulse pipeline list [flags]"); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("pipeline list: unexpected arguments %q (give a directory with --pipelines)", strings.Join(fs.Args(), " "))
		}
		return listPipelines(stdout, dir)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, pipelineUsage)
		return nil
	}
	fmt.Fprint(stderr, pipelineUsage)
	return fmt.Errorf("pipeline: unknown subcommand %q", args[0])
}

// validatePipelines checks each file on its own, then that their names
// differ from each other and from the built-in pipelines'.
func validatePipelines(stdout, stderr io.Writer, files []string) error {
	if len(files) == 0 {
		fmt.Fprint(stderr, pipelineUsage)
		return errors.New("pipeline validate: no files given")
	}
	builtin, err := pipeline.Builtin()
	if err != nil {
		return fmt.Errorf("built-in pipelines: %w", err)
	}
	bad := 0
	var valid []*pipeline.Plan
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			bad++
			continue
		}
		plan, err := pipeline.Parse(f, data)
		if err == nil {
			err = checkName(plan, data, builtin, valid)
		}
		if err != nil {
			var errs pipeline.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					fmt.Fprintln(stderr, e.Error())
				}
			} else {
				fmt.Fprintln(stderr, err)
			}
			bad++
			continue
		}
		valid = append(valid, plan)
	}
	// The files together with the built-in pipelines form one graph:
	// sources that read another pipeline's output are checked across it.
	var graph []*pipeline.Plan
	for _, b := range builtin {
		if !slices.ContainsFunc(valid, func(p *pipeline.Plan) bool { return p.Name == b.Name }) {
			graph = append(graph, b)
		}
	}
	graph = append(graph, valid...)
	broken := map[string]bool{}
	if err := pipeline.Link(graph); err != nil {
		var errs pipeline.Errors
		errors.As(err, &errs)
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
			broken[e.File] = true
		}
	}
	for _, p := range valid {
		if broken[p.File] {
			bad++
			continue
		}
		fmt.Fprintf(stdout, "%s: ok — %s\n", p.File, summary(p))
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d pipeline files are invalid", bad, len(files))
	}
	return nil
}

// checkName reports a plan whose name is taken by a built-in pipeline or
// by an earlier file. The built-in files themselves validate fine.
func checkName(plan *pipeline.Plan, data []byte, builtin, earlier []*pipeline.Plan) error {
	var others []*pipeline.Plan
	for _, b := range builtin {
		own, _ := pipelines.FS.ReadFile(strings.TrimPrefix(b.File, "builtin:"))
		if !bytes.Equal(own, data) {
			others = append(others, b)
		}
	}
	_, err := pipeline.Merge(append(others, earlier...), []*pipeline.Plan{plan})
	return err
}

// summary is "pipeline NAME, N outputs (out: tumbling 1m by [zone], ...)".
func summary(p *pipeline.Plan) string {
	outs := make([]string, len(p.Outputs))
	for i, o := range p.Outputs {
		outs[i] = o.Describe()
	}
	plural := "s"
	if len(outs) == 1 {
		plural = ""
	}
	return fmt.Sprintf("pipeline %s, %d output%s (%s)", p.Name, len(outs), plural, strings.Join(outs, ", "))
}

// pipelineListFlagSet defines the flags of pulse pipeline list, to be
// parsed into dir.
func pipelineListFlagSet(dir *string) *flag.FlagSet {
	fs := flag.NewFlagSet("pulse pipeline list", flag.ContinueOnError)
	fs.StringVar(dir, "pipelines", "", "directory of pipeline files (*.yaml) to list besides the built-in ones, as pulse run --pipelines runs them")
	return fs
}

// listPipelines prints the pipelines pulse run --pipelines dir would run.
func listPipelines(stdout io.Writer, dir string) error {
	plans, err := loadPlans(dir, true)
	if err != nil {
		return err
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		reads := strings.Join(p.Source.Topics, ", ")
		if p.Source.Pipeline != "" {
			reads = "output " + p.Source.Output + " of pipeline " + p.Source.Pipeline + " (topic " + reads + ")"
		}
		fmt.Fprintf(stdout, "%s (%s): reads %s\n", p.Name, p.File, reads)
		if p.Description != "" {
			fmt.Fprintf(stdout, "  %s\n", p.Description)
		}
		for _, o := range p.Outputs {
			what := fmt.Sprintf("%d aggregates", len(o.Aggregates))
			if o.Kind != pipeline.KindWindow {
				what = fmt.Sprintf("%d columns", len(o.Columns))
			}
			extra := []string{what, "→ " + o.Topic}
			if o.Partials > 0 {
				extra = append(extra, "partials every "+pipeline.FormatDuration(o.Partials))
			}
			if len(o.Sinks) > 0 {
				extra = append(extra, "sinks "+strings.Join(o.Sinks, ", "))
			}
			if o.Live {
				extra = append(extra, "live")
			}
			fmt.Fprintf(stdout, "  %s; %s\n", o.Describe(), strings.Join(extra, "; "))
		}
	}
	return nil
}
