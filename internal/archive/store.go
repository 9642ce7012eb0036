package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Store is where complete archive files live: a local folder or an S3
// bucket. The archiver writes every file to a local temporary file first
// (in SpoolDir) and hands it to Publish, which makes it visible under its
// name at once and complete, or not at all.
type Store interface {
	// SpoolDir is the local folder for files being written.
	SpoolDir() string
	// Publish makes the finished local file tmp visible as name (a slash
	// separated path relative to the archive root) and removes tmp.
	Publish(ctx context.Context, tmp, name string) error
	// List returns the names of the files under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// Open opens a published file for reading.
	Open(ctx context.Context, name string) (File, error)
	// String describes the store for logs.
	String() string
}

// File is a published archive file opened for reading.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// LocalStore keeps the archive in a folder. Files are written under
// .spool in the same folder (the same file system), synced, and renamed
// into place; the directory is synced after the rename.
type LocalStore struct{ root string }

// NewLocal returns the store of folder root, creating it.
func NewLocal(root string) (*LocalStore, error) {
	if err := os.MkdirAll(filepath.Join(root, ".spool"), 0o755); err != nil {
		return nil, fmt.Errorf("create archive dir %s: %w", root, err)
	}
	return &LocalStore{root: root}, nil
}

func (s *LocalStore) String() string   { return s.root }
func (s *LocalStore) SpoolDir() string { return filepath.Join(s.root, ".spool") }

// Publish renames tmp to name and syncs the directory.
func (s *LocalStore) Publish(_ context.Context, tmp, name string) error {
	dst := filepath.Join(s.root, filepath.FromSlash(name))
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("publish %s: %w", dst, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// List walks the folder under prefix, skipping the spool.
func (s *LocalStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	start := filepath.Join(s.root, filepath.FromSlash(prefix))
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			if d.Name() == ".spool" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list archive %s: %w", start, err)
	}
	return out, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f localFile) Size() int64 { return f.size }

// Open opens a file of the archive.
func (s *LocalStore) Open(_ context.Context, name string) (File, error) {
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("open archive file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open archive file: %w", err)
	}
	return localFile{f, st.Size()}, nil
}

// cleanSpool removes the files a process killed while writing left in
// dir: none of them was published, so none is needed.
func cleanSpool(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("clean archive spool %s: %w", dir, err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), tmpExt) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("clean archive spool: %w", err)
		}
		n++
	}
	return n, nil
}
