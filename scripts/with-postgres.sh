#!/usr/bin/env bash
# Runs a command with a PostgreSQL server for the tests that need one.
#
# With PGHOST or PGDATABASE set, the command runs as it is, against that
# server. Otherwise pg_virtualenv (Debian's postgresql-common) starts a
# throwaway cluster around it and sets the PG* variables; it works as root
# too. Without pg_virtualenv the command runs without a server: the
# PostgreSQL tests then skip, except with CI=true, where they fail.
set -euo pipefail
if [ -n "${PGHOST:-}" ] || [ -n "${PGDATABASE:-}" ]; then
  exec "$@"
fi
if command -v pg_virtualenv >/dev/null; then
  exec pg_virtualenv "$@"
fi
echo "with-postgres: no PG* variables and no pg_virtualenv (apt-get install postgresql); PostgreSQL tests will skip" >&2
exec "$@"
