//go:build !unix

package fdlimit

// Raise does nothing where there is no RLIMIT_NOFILE; 0 means the limit is
// unknown.
func Raise() (uint64, error) { return 0, nil }

// Current returns 0, unknown, where there is no RLIMIT_NOFILE.
func Current() (uint64, error) { return 0, nil }
