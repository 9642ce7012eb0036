package sink

import (
	"database/sql"
	"fmt"
	"strings"

	"github.com/pulsehq/pulse/internal/event"
)

// keysVersion is the PRAGMA user_version of a store whose group_key
// column is encoded by event.JoinKey.
const keysVersion = 1

// migrateKeys rewrites the group keys that Pulse before event.JoinKey
// stored unescaped, once per database. Only keys whose fields hold the
// separator or escape byte differ; a multi-field key that does not split
// into its fields was ambiguous and stays as it is (Query splits it at its
// first separators).
func migrateKeys(db *sql.DB) error {
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version >= keysVersion {
		return nil
	}
	tx, err := db.Begin()
	if err != nil {
		return fmt.Errorf("begin key migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.Query(`SELECT rowid, group_by, group_key FROM window_results
		WHERE instr(group_key, char(30)) > 0 OR instr(group_key, char(31)) > 0`)
	if err != nil {
		return fmt.Errorf("find keys to migrate: %w", err)
	}
	type change struct {
		rowid int64
		key   string
	}
	var changes []change
	for rows.Next() {
		var id int64
		var groupBy, key string
		if err := rows.Scan(&id, &groupBy, &key); err != nil {
			rows.Close()
			return fmt.Errorf("read key to migrate: %w", err)
		}
		n := 0
		if groupBy != "" {
			n = strings.Count(groupBy, ",") + 1
		}
		if fields, ok := event.SplitLegacyKey(key, n); ok {
			if enc := event.JoinKey(fields); enc != key {
				changes = append(changes, change{id, enc})
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find keys to migrate: %w", err)
	}
	for _, c := range changes {
		// OR IGNORE: a row already under the new key is the newer one.
		if _, err := tx.Exec(`UPDATE OR IGNORE window_results SET group_key = ? WHERE rowid = ?`, c.key, c.rowid); err != nil {
			return fmt.Errorf("migrate key: %w", err)
		}
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, keysVersion)); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit key migration: %w", err)
	}
	return nil
}
