//go:build !linux

package broker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dirSyncer returns a function that fsyncs every file and directory under
// dir (there is no syncfs(2) outside Linux), and one that releases dir.
func dirSyncer(dir string) (syncFS func() error, release func() error, err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("broker data dir %s for --fsync: %w", dir, err)
	}
	return func() error {
		return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil // a segment removed by compaction meanwhile
				}
				return err
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(path)
			if os.IsNotExist(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("fsync %s: %w", path, err)
			}
			defer f.Close()
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", path, err)
			}
			return nil
		})
	}, func() error { return nil }, nil
}
