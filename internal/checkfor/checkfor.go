package checkfor

import (
	"testing"
	"time"
)

// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error once timeout has passed.
func CheckFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	if err := Wait(timeout, interval, f); err != nil {
		t.Fatalf("still failing after %v: %v", timeout, err)
	}
}

// Wait calls f every interval until it returns nil, and returns f's last
// error once timeout has passed (nil if f succeeded).
func Wait(timeout, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}
