// Package pipelines holds the pipeline files built into Pulse. Each
// *.yaml file here is a pipeline in the format of docs/pipelines.md;
// internal/pipeline.Builtin parses them.
package pipelines

import "embed"

// FS holds the built-in pipeline files.
//
//go:embed *.yaml
var FS embed.FS
