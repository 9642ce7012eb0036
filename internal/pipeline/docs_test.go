package pipeline

import (
	"os"
	"strings"
	"testing"
)

// fences returns the fenced blocks of a Markdown text: their language and
// their text.
func fences(md string) [][2]string {
	var out [][2]string
	var cur *[2]string
	for _, line := range strings.SplitAfter(md, "\n") {
		switch {
		case strings.HasPrefix(line, "```") && cur == nil:
			cur = &[2]string{strings.TrimSpace(strings.TrimPrefix(line, "```")), ""}
		case strings.HasPrefix(line, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur[1] += line
		}
	}
	return out
}

// TestDocExamples parses the pipelines of docs/pipelines.md: each must be
// valid, except the validate example, whose errors must be the ones shown.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fences(string(doc))
	parsed := 0
	for i, b := range blocks {
		if b[0] != "yaml" || !strings.HasPrefix(b[1], "name:") {
			continue
		}
		parsed++
		_, err := Parse("shop.yaml", []byte(b[1]))
		if !strings.Contains(b[1], "sesion") {
			if err != nil {
				t.Errorf("example %d:\n%s\n%v", i, b[1], err)
			}
			continue
		}
		var want []string
		for _, line := range strings.Split(blocks[i+1][1], "\n") {
			if strings.HasPrefix(line, "shop.yaml:") {
				want = append(want, line)
			}
		}
		if err == nil || err.Error() != strings.Join(want, "\n") {
			t.Errorf("validate example: got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
		}
	}
	if parsed < 4 {
		t.Errorf("only %d examples found", parsed)
	}
}

// TestDocFunctions compiles the functions docs/pipelines.md lists.
func TestDocFunctions(t *testing.T) {
	for _, src := range []string{
		`size(s) > 0 && s.contains("a") && s.startsWith("a") && s.endsWith("a") && s.matches("^a+$")`,
		`int(x) + int(uint(x)) > 0 && double(s) > 0.0 && string(x) != "" && bool("true") && type(x) == double`,
		`timestamp(s) > timestamp("2026-01-01T00:00:00Z") && duration("1m") > duration("1s")`,
		`s.lowerAscii() + s.upperAscii() + s.trim() + s.replace("a", "b") + s.split("/")[0] + s.substring(1) + ["a"].join("-") + "%s".format([s]) != "" && s.indexOf("a") >= 0`,
		`math.abs(x) + math.ceil(x) + math.floor(x) + math.round(x) + math.greatest(x, 1.0) + math.least(x, 1.0) + math.sqrt(x) > 0.0`,
		`l.all(v, v > 0.0) && l.exists(v, v > 1.0) && l.exists_one(v, v > 2.0) && size(l.map(v, v * 2.0)) == size(l.filter(v, v > 0.0))`,
		`zone in ["z1", "z2"] && tags[0] == m["k"] && (x > 10 ? true : false) && has(device.model)`,
	} {
		p := &parser{file: "x.yaml"}
		if prog, _ := p.compile(scalar(src), "where"); prog == nil {
			t.Errorf("%s: %v", src, p.errs)
		}
	}
}

// TestDocHaving parses the computed and having example of
// docs/pipelines.md, valid and with the misspelt column whose error the
// page shows.
func TestDocHaving(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fences(string(doc))
	for i, b := range blocks {
		if b[0] != "yaml" || !strings.HasPrefix(b[1], "  - name: api_1m") {
			continue
		}
		src := "name: shop\nsource: {topic: api, key: route, time: {field: ts}}\noutputs:\n" + b[1]
		if _, err := Parse("shop.yaml", []byte(src)); err != nil {
			t.Fatalf("example:\n%s\n%v", src, err)
		}
		bad := strings.Replace(src, "having: 'errors > 10 || error_ratio > 0.5'", "having: erors > 10", 1)
		_, err := Parse("shop.yaml", []byte(bad))
		if want := strings.TrimSpace(blocks[i+1][1]); err == nil || err.Error() != want {
			t.Errorf("got\n%v\nwant\n%s", err, want)
		}
		return
	}
	t.Fatal("no computed and having example")
}
