package main

import (
	"context"
	"strings"
	"testing"
)

// TestStateFlagsChecked: a state store pulse run does not know, or a
// cache of no groups, stops it before it starts anything, naming the flag.
func TestStateFlagsChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--state", "pebble"}, `--state: state store "pebble": use memory, disk or auto`},
		{[]string{"--state", "disk", "--state-cache", "0"}, "--state-cache 0"},
		{[]string{"--state", "auto", "--state-auto-groups", "-1"}, "--state-auto-groups -1"},
	} {
		err := runCmd(context.Background(), append([]string{"--data-dir", t.TempDir()}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pulse run %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
