// Package firstrun holds no code: its test keeps the first run of the
// README's two commands light. It measures what building headcount, its
// tests and the go.mod tools takes from the module cache and fails when
// that grows past a budget, or when a cloud SDK comes back into go.mod
// through a tool's dependencies.
package firstrun
