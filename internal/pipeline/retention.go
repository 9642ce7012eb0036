package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MinRetention is the shortest retention an output may have: a stored
// result must outlive the allowed lateness that may still update it.
const MinRetention = time.Minute

const retentionHint = "write a number with a unit, e.g. 30d, 2w, 12h or 90m (d: days, w: weeks)"

// retention reads an output's retention: a Go duration or a whole number
// of days (d) or weeks (w), at least MinRetention.
func (p *parser) retention(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := p.str(n, path, retentionHint)
	if !ok {
		return 0, false
	}
	d, err := ParseRetention(s)
	if err != nil {
		p.errorf(n, path, retentionHint, "%q is not a retention: %v", s, err)
		return 0, false
	}
	if d < MinRetention {
		p.errorf(n, path, "keep results at least 1m, or leave retention out to keep them forever", "retention %s is shorter than %s", s, MinRetention)
		return 0, false
	}
	return d, true
}

// ParseRetention parses a duration that may also be a whole number of
// days ("30d") or weeks ("2w").
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for unit, d := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			n, err := strconv.ParseUint(num, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("%s before %q must be a whole number of at most 65535", num, unit)
			}
			return time.Duration(n) * d, nil
		}
	}
	return time.ParseDuration(s)
}
