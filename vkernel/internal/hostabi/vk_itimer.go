package hostabi

import (
	"context"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// itimer is a process's ITIMER_REAL.
type itimer struct {
	mu       sync.Mutex
	timer    *time.Timer
	gen      uint64 // which arming a firing timer belongs to
	deadline time.Time
	interval time.Duration
	closed   bool
}

// set arms the timer (value 0 disarms; value < 0 leaves it) and returns
// the time that was left and the interval.
func (t *itimer) set(p *Process, value, interval time.Duration) (left, oldInterval time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		left = max(time.Until(t.deadline), time.Nanosecond)
	}
	oldInterval = t.interval
	if value < 0 || t.closed {
		return left, oldInterval
	}
	t.stopLocked()
	if value == 0 {
		return left, oldInterval
	}
	t.interval = interval
	t.armLocked(p, value)
	return left, oldInterval
}

func (t *itimer) armLocked(p *Process, after time.Duration) {
	t.gen++
	gen := t.gen
	t.deadline = time.Now().Add(after)
	t.timer = time.AfterFunc(after, func() { t.fire(p, gen) })
}

func (t *itimer) fire(p *Process, gen uint64) {
	t.mu.Lock()
	if t.gen != gen || t.closed {
		t.mu.Unlock()
		return
	}
	t.timer = nil
	if t.interval > 0 {
		t.armLocked(p, t.interval)
	} else {
		t.interval = 0
	}
	t.mu.Unlock()
	p.Signal(unix.SIGALRM)
}

func (t *itimer) stopLocked() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.gen++
	t.interval = 0
}

func (t *itimer) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked()
	t.closed = true
}

// vkProcSetitimer is vkernel.proc_setitimer(value_ns, interval_ns,
// result.old) -> errno: ITIMER_REAL. SIGALRM after value_ns nanoseconds,
// then every interval_ns (0: once); value_ns 0 disarms it and a negative
// value_ns leaves it as it is (getitimer). The time that was left and the
// interval go to result.old as two little-endian u64 nanoseconds. EINVAL
// for a negative interval, EFAULT.
var vkProcSetitimer = &hostFunc{
	module: ModuleVkernel, name: "proc_setitimer", untimed: true,
	params: []string{"value_ns", "interval_ns", "result.old"}, types: []api.ValueType{i64, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		value, interval := int64(s[0]), int64(s[1])
		if interval < 0 {
			return EINVAL
		}
		b, ok := view(mod.Memory(), uint32(s[2]), 16)
		if !ok {
			return EFAULT
		}
		left, old := p.timer.set(p, time.Duration(value), time.Duration(interval))
		put64(b, uint64(left))
		put64(b[8:], uint64(old))
		return ESUCCESS
	},
}
