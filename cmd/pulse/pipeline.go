package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/pipelines"
)

const pipelineUsage = `Usage:
  pulse pipeline validate FILE...   check pipeline files and print every problem found
  pulse pipeline list               list the built-in pipelines and their outputs

The pipeline file format is described in docs/pipelines.md.
`

func pipelineCmd(ctx context.Context, args []string) error {
	return pipelineMain(ctx, os.Stdout, os.Stderr, args)
}

func pipelineMain(_ context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pipelineUsage)
		return errors.New("pipeline: missing subcommand")
	}
	switch args[0] {
	case "validate":
		return validatePipelines(stdout, stderr, args[1:])
	case "list":
		if len(args) > 1 {
			return fmt.Errorf("pipeline list takes no arguments")
		}
		return listPipelines(stdout)
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
		fmt.Fprintf(stdout, "%s: ok — %s\n", f, summary(plan))
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

func listPipelines(stdout io.Writer) error {
	plans, err := pipeline.Builtin()
	if err != nil {
		return fmt.Errorf("built-in pipelines: %w", err)
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s (%s): reads %s\n", p.Name, p.File, strings.Join(p.Source.Topics, ", "))
		if p.Description != "" {
			fmt.Fprintf(stdout, "  %s\n", p.Description)
		}
		for _, o := range p.Outputs {
			extra := []string{fmt.Sprintf("%d aggregates", len(o.Aggregates)), "→ " + o.Topic}
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
