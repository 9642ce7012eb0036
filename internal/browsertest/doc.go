// Package browsertest starts headless Chromium for Pulse's browser tests:
// Debian's chromium with the flags this sandbox needs, skipped when it is
// missing outside CI and a failure in CI.
package browsertest
