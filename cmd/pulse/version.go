package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// The build stamps these (make build and the Dockerfile do):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)
//	  -X main.commitTime=$(git log -1 --format=%cI) -X main.modified=true"
//
// What is not stamped comes from the build information Go records in the
// binary: the module version and, for a go build in a git checkout, the
// commit, its time and whether the tree had changes.
var version, commit, commitTime, modified string

// versionString is e.g. "v1.2.3 (commit 0123456789ab, modified,
// 2026-12-01T09:00:00Z, go1.26.8)".
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return describeVersion(stamp{version, commit, commitTime, modified}, info)
}

type stamp struct{ version, commit, time, modified string }

func describeVersion(s stamp, info *debug.BuildInfo) string {
	goVersion := ""
	if info != nil {
		for _, kv := range info.Settings {
			switch {
			case kv.Key == "vcs.revision" && s.commit == "":
				s.commit = kv.Value
			case kv.Key == "vcs.time" && s.time == "":
				s.time = kv.Value
			case kv.Key == "vcs.modified" && s.modified == "":
				s.modified = kv.Value
			}
		}
		goVersion = info.GoVersion
		if s.version == "" && info.Main.Version != "(devel)" {
			s.version = info.Main.Version
		}
	}
	if s.version == "" {
		s.version = "dev"
	}
	var details []string
	if s.commit != "" {
		details = append(details, "commit "+s.commit[:min(len(s.commit), 12)])
	}
	if s.modified == "true" {
		details = append(details, "modified")
	}
	for _, d := range []string{s.time, goVersion} {
		if d != "" {
			details = append(details, d)
		}
	}
	if len(details) == 0 {
		return s.version
	}
	return fmt.Sprintf("%s (%s)", s.version, strings.Join(details, ", "))
}
