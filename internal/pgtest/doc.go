// Package pgtest gives tests a PostgreSQL of their own: the server the
// standard PG* environment variables name (pg_virtualenv sets them; make
// test runs under it), a schema per test, dropped at its end. Without PG*
// the tests skip, except in CI (CI=true), where a missing server fails
// them.
package pgtest
