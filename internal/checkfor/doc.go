// Package checkfor is the one polling helper of Pulse's tests: wait for a
// condition with a deadline instead of sleeping (as nats-server's checkFor).
package checkfor
