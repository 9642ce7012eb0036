package serve

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// dashboard serves the embedded dashboard assets.
func dashboard() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return http.FileServerFS(sub)
}
