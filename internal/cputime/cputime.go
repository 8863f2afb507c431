// Package cputime reads the process's CPU time, for benchmarks that report CPU per operation
// (cpu-ns/op): on a shared machine other processes inflate wall time far more than the CPU
// time of the process being measured.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user and system CPU time the process has used so far (0 if it cannot be read).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
