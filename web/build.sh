#!/bin/sh
# Installs the pinned front-end dependencies and copies the files the
# dashboard uses into internal/serve/static/vendor/, which is committed so
# that `go build` and `go run` need no npm.
#
#   sh web/build.sh        (or: cd web && npm run build)
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
dest=../internal/serve/static/vendor
mkdir -p "$dest"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$dest/"
cp node_modules/uplot/LICENSE "$dest/uPlot.LICENSE"
echo "copied uPlot $(node -p "require('./node_modules/uplot/package.json').version") into internal/serve/static/vendor/"
