package hostabi

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The clocks read through the vDSO are the host's CLOCK_MONOTONIC and
// CLOCK_REALTIME, as a native program reads them with clock_gettime.
func TestClocksAreTheHosts(t *testing.T) {
	p := &Process{start: time.Now()}
	for _, c := range []struct {
		id   uint32
		host int32
	}{{clockMonotonic, unix.CLOCK_MONOTONIC}, {clockRealtime, unix.CLOCK_REALTIME}} {
		var before, after unix.Timespec
		unix.ClockGettime(c.host, &before)
		got, errno := p.now(c.id)
		unix.ClockGettime(c.host, &after)
		if errno != ESUCCESS || got < before.Nano() || got > after.Nano() {
			t.Errorf("clock %d: %d (errno %d), want between the host's %d and %d", c.id, got, errno, before.Nano(), after.Nano())
		}
	}
}
