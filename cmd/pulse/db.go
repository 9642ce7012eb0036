package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pulsehq/pulse/internal/sink"
)

const dbUsage = "result database: postgres://user:password@host:5432/database (the PG* environment variables fill in what it leaves out), or sqlite:/path/results.db; default: SQLite in --data-dir (docs/storage.md)"

const dbHelp = `Usage:
  pulse db migrate [--db URL] [--data-dir DIR] [--pipelines DIR] [--builtin=false]
      run the result database's migrations and create or update the table
      of every stored output of the pipelines, as pulse run does on start,
      then print the migrations and tables

The tables, the type mapping and example SQL are in docs/storage.md.
`

func dbMain(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dbHelp)
		return errors.New("db: missing subcommand")
	}
	switch args[0] {
	case "migrate":
		var db, dataDir, pipelinesDir string
		var builtin bool
		fs := flag.NewFlagSet("pulse db migrate", flag.ContinueOnError)
		fs.StringVar(&db, "db", "", dbUsage)
		fs.StringVar(&dataDir, "data-dir", "./pulse-data", "data directory of pulse run, whose results.db is the database without --db")
		fs.StringVar(&pipelinesDir, "pipelines", "", "directory of pipeline files (*.yaml) whose outputs get tables besides the built-in ones")
		fs.BoolVar(&builtin, "builtin", true, "make the tables of the built-in pipelines too")
		fs.SetOutput(stderr)
		if err := parseFlags(fs, args[1:], "pulse db migrate [flags]"); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("db migrate takes no arguments, got %q", fs.Args())
		}
		return dbMigrate(ctx, stdout, db, dataDir, pipelinesDir, builtin)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, dbHelp)
		return nil
	}
	fmt.Fprint(stderr, dbHelp)
	return fmt.Errorf("db: unknown subcommand %q", args[0])
}

func dbMigrate(ctx context.Context, stdout io.Writer, db, dataDir, pipelinesDir string, builtin bool) error {
	plans, err := loadPlans(pipelinesDir, builtin)
	if err != nil {
		return err
	}
	store, err := sink.Open(ctx, db, dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Prepare(ctx, plans); err != nil {
		return err
	}
	applied, err := store.Migrations(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s database migrated:\n", store.Dialect())
	for _, m := range applied {
		fmt.Fprintln(stdout, "  migration", m)
	}
	tables, err := store.Tables(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		fmt.Fprintf(stdout, "  table %s: pipeline %s, output %s\n", t.Name, t.Pipeline, t.Output)
	}
	return nil
}
