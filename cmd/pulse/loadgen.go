package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/loadgen"
)

const loadgenUsage = `Usage: pulse loadgen <scenario> [flags]

Scenarios:
  city   traffic, air-quality and weather sensors spread over city zones

Run "pulse loadgen city --help" for the flags.
`

const defaultTarget = "http://127.0.0.1:8080"

func loadgenCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, loadgenUsage)
		return fmt.Errorf("loadgen: missing scenario: known scenarios are city")
	}
	switch args[0] {
	case "city":
	case "help", "-h", "-help", "--help":
		fmt.Print(loadgenUsage)
		return nil
	default:
		fmt.Fprint(os.Stderr, loadgenUsage)
		return fmt.Errorf("loadgen: unknown scenario %q: known scenarios are city", args[0])
	}

	lf, err := parseLoadgen(args[1:])
	if err != nil {
		return err
	}
	log, err := newLogger(lf.logLevel)
	if err != nil {
		return err
	}
	cfg := lf.cfg
	if !lf.quiet {
		cfg.Progress = os.Stdout
	}
	cfg.Logger = log

	dest := cfg.Target
	if dest == "" {
		dest = "kafka " + strings.Join(cfg.Brokers, ",") + " topic " + cfg.Stream
	}
	fmt.Printf("pulse loadgen city: %g readings/s from %d sensors in %d zones to %s (seed %d)\n", cfg.Rate, cfg.Sensors, cfg.Zones, dest, cfg.Seed)
	sum, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("summary: %s\n", sum)
	if sum.Sent > 0 && sum.Errors == sum.Sent {
		return fmt.Errorf("loadgen: no reading was delivered to %s in %s", dest, sum.Elapsed.Round(time.Millisecond))
	}
	return nil
}

// parseLoadgen parses and checks the flags of pulse loadgen city.
func parseLoadgen(args []string) (*loadgenFlags, error) {
	lf := new(loadgenFlags)
	fs := loadgenFlagSet(lf)
	if err := parseFlags(fs, args, "pulse loadgen city [flags]"); err != nil {
		return nil, err
	}
	cfg := &lf.cfg
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("loadgen: unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if cfg.Brokers = splitList(lf.brokers); len(cfg.Brokers) > 0 {
		targetSet := false
		fs.Visit(func(f *flag.Flag) { targetSet = targetSet || f.Name == "target" })
		if targetSet {
			return nil, fmt.Errorf("loadgen: use --target or --brokers, not both")
		}
		cfg.Target = ""
	}
	if cfg.Rate < 0 || cfg.Sensors <= 0 || cfg.Zones <= 0 || cfg.BatchSize < 0 || cfg.Concurrency <= 0 || cfg.Duration < 0 {
		return nil, fmt.Errorf("loadgen: --rate, --duration and --batch must not be negative, --sensors, --zones and --concurrency must be positive")
	}
	if cfg.AnomalyRate < 0 || cfg.AnomalyRate > 1 {
		return nil, fmt.Errorf("loadgen: --anomaly-rate %v is not a share between 0 and 1", cfg.AnomalyRate)
	}
	if cfg.AnomalyRate == 0 {
		cfg.AnomalyRate = -1 // Config reads 0 as the default
	}
	return lf, nil
}

// loadgenFlags are the settings of pulse loadgen city.
type loadgenFlags struct {
	cfg      loadgen.Config
	brokers  string
	logLevel string
	quiet    bool
}

// loadgenFlagSet defines the flags of pulse loadgen city, to be parsed into f.
func loadgenFlagSet(f *loadgenFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("pulse loadgen city", flag.ContinueOnError)
	fs.StringVar(&f.cfg.Target, "target", defaultTarget, "base URL of the Pulse HTTP server to POST readings to")
	fs.StringVar(&f.brokers, "brokers", "", "comma separated host:port list of Kafka brokers to produce to instead of --target")
	fs.StringVar(&f.cfg.Stream, "stream", "city", "stream (HTTP) or topic (Kafka) the readings go to")
	fs.Float64Var(&f.cfg.Rate, "rate", 2000, "readings per second in total; 0 sends as fast as the target takes them")
	fs.IntVar(&f.cfg.Sensors, "sensors", 1000, "number of simulated sensors (half traffic, a quarter each air and weather)")
	fs.IntVar(&f.cfg.Zones, "zones", 20, "number of zones the sensors are spread over")
	fs.DurationVar(&f.cfg.Duration, "duration", 0, "how long to run, e.g. 60s; 0 runs until interrupted")
	fs.Int64Var(&f.cfg.Seed, "seed", 1, "random seed: the same seed gives the same city and readings")
	fs.IntVar(&f.cfg.BatchSize, "batch", 0, "readings per HTTP request or Kafka batch (default rate/50, at most 5000)")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", 4, "requests or batches in flight at once")
	fs.Float64Var(&f.cfg.AnomalyRate, "anomaly-rate", loadgen.DefaultAnomalyRate, "share of readings with an injected anomaly (speed collapse, pm25 spike, storm); 0 injects none")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print a progress line every second")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return fs
}
