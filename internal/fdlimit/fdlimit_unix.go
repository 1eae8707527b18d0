//go:build unix

// Package fdlimit reads and raises a process's open-file limit: every
// stream (and every load-generator connection) holds one descriptor.
package fdlimit

import "syscall"

// Raise lifts the soft RLIMIT_NOFILE to the hard limit and returns the
// limit now in force.
func Raise() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, err
		}
	}
	return lim.Cur, nil
}

// Current returns the soft RLIMIT_NOFILE in force.
func Current() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
