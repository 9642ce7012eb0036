package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a pipeline file.
type Error struct {
	File string
	// Line and Col are 1-based; 0 when the position is unknown.
	Line, Col int
	// Path locates the problem in the file's structure, e.g.
	// "outputs[1].window" or "source.time.format".
	Path string
	Msg  string
	// Hint says how to fix the problem; it may be empty.
	Hint string
}

// Error formats e as "file:line:col: path: msg (hint: ...)".
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Errors is every problem found in one or more pipeline files.
type Errors []Error

// Error formats the errors one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders the errors of one file by position, keeping the order
// they were found in among equal positions.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
}

// suggest returns the candidate closest to s when it is at most two edits
// away, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein(s, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// levenshtein returns the edit distance between a and b, or max when it is
// at least max (it gives up early on strings of very different lengths).
func levenshtein(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], max)
}

// oneOf formats a list of allowed values: "a, b or c".
func oneOf(vals []string) string {
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return vals[0]
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}

// didYouMean is the hint for a value not in allowed.
func didYouMean(got string, allowed []string) string {
	if s := suggest(got, allowed); s != "" {
		return "did you mean " + s + "?"
	}
	return "use " + oneOf(allowed)
}

// Suggest returns the candidate closest to s when it is at most two edits
// away, or "": the "did you mean" of a misspelt name.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }
