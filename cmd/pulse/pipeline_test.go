package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodPipeline = `name: shop
source:
  topic: clicks
  key: user_id
  time: {field: at}
outputs:
  - name: sessions
    group_by: [user_id]
    window: {session: {gap: 30m}}
    aggregates: {views: count()}
  - name: traffic
    window: {hopping: {size: 5m, slide: 1m}}
    aggregates: {views: count()}
`

const badPipeline = `name: shop2
source:
  topic: clicks
  key: user_id
  time: {field: at}
outputs:
  - name: sessions
    window: {tumbling: 1m, sesion: {gap: 30m}}
    aggregates: {views: median(x)}
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runPipeline(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := pipelineMain(context.Background(), &out, &errOut, args)
	return out.String(), errOut.String(), err
}

func TestPipelineValidate(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "shop.yaml"), filepath.Join(dir, "bad.yaml")
	writeFile(t, good, goodPipeline)
	writeFile(t, bad, badPipeline)

	out, errOut, err := runPipeline(t, "validate", good, filepath.Join("..", "..", "pipelines", "city.yaml"))
	if err != nil || errOut != "" {
		t.Fatalf("valid files: %v\n%s", err, errOut)
	}
	want := good + ": ok — pipeline shop, 2 outputs (sessions: session gap 30m by [user_id], traffic: hopping 5m every 1m)\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "city.yaml: ok — pipeline city, 2 outputs (sensor_1m: tumbling 1m by [sensor_id], zone_1m: tumbling 1m by [zone])") {
		t.Errorf("output:\n%s\nwant first line:\n%s", out, want)
	}

	out, errOut, err = runPipeline(t, "validate", bad, good)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 pipeline files are invalid") {
		t.Fatalf("error %v", err)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 2 ||
		lines[0] != bad+`:8:28: outputs[0].window.sesion: unknown key "sesion" (hint: did you mean session?)` ||
		!strings.HasPrefix(lines[1], bad+":9:25: outputs[0].aggregates.views: unknown aggregate function median (hint: known functions: count,") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !strings.Contains(out, good+": ok") {
		t.Errorf("stdout %q", out)
	}

	clash := filepath.Join(dir, "city.yaml")
	writeFile(t, clash, strings.Replace(goodPipeline, "name: shop", "name: city", 1))
	_, errOut, err = runPipeline(t, "validate", good, good, clash)
	if err == nil || !strings.Contains(errOut, "name: pipeline shop is already defined in "+good) ||
		!strings.Contains(errOut, "name: pipeline city is already defined in builtin:city.yaml") {
		t.Errorf("duplicates: %v\n%s", err, errOut)
	}

	if _, _, err := runPipeline(t, "validate", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("no error for a missing file")
	}
	if _, _, err := runPipeline(t, "validate"); err == nil {
		t.Error("no error without files")
	}
	if _, _, err := runPipeline(t, "frobnicate"); err == nil {
		t.Error("no error for an unknown subcommand")
	}
}

func TestPipelineList(t *testing.T) {
	out, _, err := runPipeline(t, "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"city (builtin:city.yaml): reads city\n",
		"  zone_1m: tumbling 1m by [zone]; 45 aggregates; → city.zone_1m; partials every 500ms; sinks sqlite; live\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}
