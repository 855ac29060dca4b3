package hostabi

import (
	"slices"
	"testing"
)

// pollState's epoll-set bookkeeping: members lists exactly the fds with
// registered events, whatever the order they come and go in.
func TestPollStateMembers(t *testing.T) {
	var ps pollState
	check := func(want ...int) {
		t.Helper()
		got := slices.Clone(ps.members)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("members %v, want %v", got, want)
		}
		for _, fd := range want {
			if ps.registered(fd) == 0 {
				t.Fatalf("fd %d in members but not registered", fd)
			}
		}
	}
	ps.setRegistered(7, 1)
	ps.setRegistered(3, 4)
	ps.setRegistered(300, 1)
	check(3, 7, 300)
	ps.setRegistered(7, 5) // a change of events is no new member
	check(3, 7, 300)
	ps.setRegistered(3, 0)
	check(7, 300)
	ps.setRegistered(3, 0) // not a member: nothing to drop
	check(7, 300)
	ps.setRegistered(300, 0)
	ps.setRegistered(7, 0)
	check()
	if ps.registered(1000) != 0 {
		t.Fatal("an fd never seen is registered")
	}

	// want/wanted: each call starts from nothing.
	ps.addWant(5, 1)
	ps.addWant(5, 4)
	ps.addWant(2, 1)
	if !slices.Equal(ps.wanted, []int{5, 2}) || ps.want[5] != 5 || ps.want[2] != 1 {
		t.Fatalf("wanted %v, want %v", ps.wanted, ps.want)
	}
	ps.resetWant()
	if len(ps.wanted) != 0 || ps.want[5] != 0 || ps.want[2] != 0 {
		t.Fatalf("after reset: wanted %v, want %v", ps.wanted, ps.want)
	}
}
