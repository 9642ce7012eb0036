package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// The catalog pulse_tables lists every output table: its name, pipeline,
// output, version, kind and columns (JSON), and whether it is the
// current version. An output whose schema changed so that its table
// cannot keep its rows (other key columns, a column of another type)
// gets a new version of its table, <pipeline>__<output>_v2 and so on;
// the old one stays, with its rows, no longer written or read by Pulse.
// A column the output gained is added to its table; one it lost stays
// (NULL in the rows written since).

// loadCatalog reads the catalog into the cache, once. s.mu is held.
func (s *SQLStore) loadCatalog(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	rs, err := s.c.query(ctx, `SELECT table_name, pipeline, output, version, kind, columns, current FROM pulse_tables`)
	if err != nil {
		return fmt.Errorf("read the table catalog pulse_tables: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		t := &table{}
		var cols string
		var current int64
		if err := rs.Scan(&t.name, &t.pipeline, &t.output, &t.version, &t.kind, &cols, &current); err != nil {
			return fmt.Errorf("read the table catalog pulse_tables: %w", err)
		}
		if err := json.Unmarshal([]byte(cols), &t.cols); err != nil {
			return fmt.Errorf("table %s in pulse_tables: columns %q: %w", t.name, cols, err)
		}
		id := outputID{t.pipeline, t.output}
		s.names[t.name] = id
		s.versions[id] = max(s.versions[id], t.version)
		if current != 0 {
			s.tables[id] = t
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("read the table catalog pulse_tables: %w", err)
	}
	s.loaded = true
	return nil
}

// lookup returns the current table of a pipeline's output if it can hold
// s's rows, nil if there is none.
func (s *SQLStore) lookup(ctx context.Context, pipelineName string, sch *stream.Schema) (*table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadCatalog(ctx); err != nil {
		return nil, err
	}
	t := s.tables[outputID{pipelineName, sch.Output}]
	if t == nil {
		return nil, nil
	}
	if _, why := t.fits(sch); why != "" {
		return nil, nil
	}
	return t, nil
}

// Prepare creates or updates the tables of the outputs of plans that
// list the sqlite sink, and moves the rows that an earlier version of
// Pulse kept in window_results into them (migrate.go). The feed calls it
// on start; writing a batch prepares a table it finds missing too.
func (s *SQLStore) Prepare(ctx context.Context, plans []*pipeline.Plan) error {
	var outs []storedSchema
	for _, p := range plans {
		for i := range p.Outputs {
			if o := &p.Outputs[i]; storedOutput(o) {
				outs = append(outs, storedSchema{p.Name, stream.SchemaOf(o)})
			}
		}
	}
	return s.prepare(ctx, outs)
}

// storedSchema is an output whose results are stored.
type storedSchema struct {
	pipeline string
	schema   *stream.Schema
}

func (s *SQLStore) prepare(ctx context.Context, outs []storedSchema) error {
	for _, o := range outs {
		t, err := s.ensure(ctx, o.pipeline, o.schema)
		if err != nil {
			return err
		}
		if err := s.moveLegacy(ctx, t, o.pipeline, o.schema); err != nil {
			return err
		}
	}
	return nil
}

// storedOutput reports whether o's results go to the result store.
func storedOutput(o *pipeline.Output) bool {
	for _, s := range o.Sinks {
		if s == "sqlite" {
			return true
		}
	}
	return false
}

// ensure returns the table that keeps s's rows: the output's current
// table, with the columns s added since, or a new one (a new version if
// s no longer fits the current one).
func (s *SQLStore) ensure(ctx context.Context, pipelineName string, sch *stream.Schema) (*table, error) {
	sig := signature(sch)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadCatalog(ctx); err != nil {
		return nil, err
	}
	id := outputID{pipelineName, sch.Output}
	t := s.tables[id]
	if t != nil && t.checked == sig {
		return t, nil
	}
	next, err := s.evolve(ctx, t, id, sch)
	if err != nil {
		return nil, err
	}
	next.checked, next.write, next.ids, next.pk, next.stmts = sig, sch.Columns, len(sch.Group())+1, pkColumns(sch), nil
	s.tables[id] = next
	s.names[next.name] = id
	s.versions[id] = max(s.versions[id], next.version)
	return next, nil
}

// evolve brings the catalog and tables in line with sch in one
// transaction, returning the table to write. s.mu is held.
func (s *SQLStore) evolve(ctx context.Context, cur *table, id outputID, sch *stream.Schema) (*table, error) {
	tx, err := s.lockedTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin creating the table of %s/%s (locking the table catalog): %w", id.pipeline, id.output, err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	var t *table
	if cur != nil {
		missing, why := cur.fits(sch)
		if why == "" {
			cp := *cur
			cp.cols = slices.Clone(cur.cols)
			t = &cp
			for _, c := range missing {
				if err := tx.exec(ctx, addColumn(s.d, t.name, c)); err != nil {
					return nil, fmt.Errorf("add column %s to table %s: %w", c.Name, t.name, err)
				}
				t.cols = append(t.cols, catalogColumn{Name: c.Name, Type: c.Type.String()})
			}
			if len(missing) > 0 {
				cols, _ := json.Marshal(t.cols)
				if err := tx.exec(ctx, `UPDATE pulse_tables SET columns = `+s.d.param(1, "")+` WHERE table_name = `+s.d.param(2, ""), string(cols), t.name); err != nil {
					return nil, fmt.Errorf("record the columns of table %s: %w", t.name, err)
				}
			}
		} else {
			s.log.Warn("an output's results go to a new version of its table: the old table cannot hold them",
				"pipeline", id.pipeline, "output", id.output, "old_table", cur.name, "reason", why)
			if err := tx.exec(ctx, `UPDATE pulse_tables SET current = 0 WHERE table_name = `+s.d.param(1, ""), cur.name); err != nil {
				return nil, fmt.Errorf("retire table %s: %w", cur.name, err)
			}
		}
	}
	if t == nil {
		if t, err = s.create(ctx, tx, id, sch); err != nil {
			return nil, err
		}
	}
	if err := tx.commit(ctx); err != nil {
		return nil, fmt.Errorf("commit the table of %s/%s: %w", id.pipeline, id.output, err)
	}
	return t, nil
}

// create creates the next version of an output's table and records it
// in the catalog.
func (s *SQLStore) create(ctx context.Context, tx txn, id outputID, sch *stream.Schema) (*table, error) {
	// Versions are numbered per output, from the highest one in the
	// catalog.
	v := s.versions[id] + 1
	name := tableName(id.pipeline, id.output, v, false)
	if o, taken := s.names[name]; taken && o != id {
		name = tableName(id.pipeline, id.output, v, true)
	}
	for _, stmt := range createTable(s.d, name, id.pipeline, sch) {
		if err := tx.exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create table %s for the results of %s/%s: %w (if a table of that name that Pulse did not create is in the way, rename or drop it)",
				name, id.pipeline, id.output, err)
		}
	}
	t := &table{name: name, pipeline: id.pipeline, output: id.output, version: v, kind: kindName(sch.Kind), cols: columnsOf(sch)}
	cols, _ := json.Marshal(t.cols)
	p := s.d.param
	if err := tx.exec(ctx, `INSERT INTO pulse_tables (table_name, pipeline, output, version, kind, columns, current, created_at)
		VALUES (`+p(1, "")+`, `+p(2, "")+`, `+p(3, "")+`, `+p(4, "")+`, `+p(5, "")+`, `+p(6, "")+`, 1, `+p(7, "")+`)`,
		name, id.pipeline, id.output, v, t.kind, string(cols), s.d.timeArg(now().UnixMilli())); err != nil {
		return nil, fmt.Errorf("record table %s in pulse_tables: %w", name, err)
	}
	return t, nil
}

// TableInfo names the current table of an output.
type TableInfo struct {
	Name, Pipeline, Output string
}

// Tables returns the current table of every output, by name.
func (s *SQLStore) Tables(ctx context.Context) ([]TableInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadCatalog(ctx); err != nil {
		return nil, err
	}
	var out []TableInfo
	for _, t := range s.tables {
		out = append(out, TableInfo{t.name, t.pipeline, t.output})
	}
	slices.SortFunc(out, func(a, b TableInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
