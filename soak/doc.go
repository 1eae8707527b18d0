// Package soak holds headcount's soak test (soak_test.go): random joins,
// leaves, resets, stuck and slow readers from several users, against one
// instance and against two sharing a Redis, ending with the counts equal
// to the open streams, goroutines and heap back near their start, and no
// 5xx. The suite runs a short version; `go tool task soak` runs it for
// about a minute (HEADCOUNT_SOAK_DURATION per scenario).
package soak
