// Package health is what /readyz reports: a registry of Pulse's
// components, each with a check that says whether it is ready and, when it
// is not, why.
//
// A component is anything whose failure makes Pulse unable to do its work:
// the Kafka connection, each worker of each pipeline stage, the SQLite
// sink, the topics, the disk. It registers once, under a name an operator
// recognises, a check that returns nil while the component is ready and an
// error whose text is the reason otherwise:
//
//	reg.Add("disk", guard.Health)
//
// where guard.Health has the signature func(context.Context) error and
// returns, say, errors.New("free space 12 MiB below reserve 256 MiB on
// /data"). A check must be cheap (it runs on every /readyz request) and
// must honour its context: Report runs the checks concurrently under the
// caller's context, and /readyz gives them 2 s together. Components may register at any time, also after the HTTP
// server started; adding a name again replaces its check.
//
// Report runs every check and returns the JSON body of /readyz: status
// "ready" or "not ready", a top-level reason (that of the first failing
// component, prefixed with its name), and one entry per component with its
// name, ready and reason.
package health
