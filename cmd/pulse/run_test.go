package main

import (
	"context"
	"strings"
	"testing"
)

// TestHTTPLimitFlagsChecked: limits that cannot work stop pulse run
// before it starts anything, with the flag to fix.
func TestHTTPLimitFlagsChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-write-timeout", "5s"}, "must exceed --produce-timeout"},
		{[]string{"--http-max-conns", "0"}, "--http-max-conns 0"},
		{[]string{"--live-max-clients", "0"}, "--live-max-clients 0"},
		{[]string{"--http-body-timeout", "0s"}, "--http-body-timeout"},
		{[]string{"--http-min-body-rate", "-1"}, "--http-min-body-rate -1"},
	} {
		err := runCmd(context.Background(), append([]string{"--data-dir", t.TempDir()}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pulse run %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
