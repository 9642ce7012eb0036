// Package tmpfs gives tests a small file system of their own, for a full
// disk that is real: a tmpfs of a given size mounted under the test's
// temporary folder and unmounted at its end. Mounting needs root; as
// anyone else the tests skip, except in CI (CI=true), which runs as root
// and where a test that cannot mount fails.
package tmpfs
