package broker

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dirSyncer returns a function that flushes the filesystem holding dir to
// disk (syncfs(2): every dirty file on it, the broker's or not, and the
// metadata), and one that releases dir.
func dirSyncer(dir string) (syncFS func() error, release func() error, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open broker data dir %s for --fsync: %w", dir, err)
	}
	return func() error {
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return fmt.Errorf("syncfs %s: %w", dir, err)
		}
		return nil
	}, f.Close, nil
}
