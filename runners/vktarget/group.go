package vktarget

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Each compat exec process leads a process group of its own, which every
// vkernel process of its tree joins (none changes its group). A unit that
// ends, however it ends, is over only when that group is empty:
//
//   - A unit stopped (its deadline, or the run interrupted) has its whole
//     group killed at once with SIGKILL, wherever its guests are.
//   - compat exec killed or crashed leaves its children to die of their
//     parent-death signal, orphans of a dead parent.
//
// Orphans are the host init's to reap, and some inits never do, so this
// process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): the
// orphans of its descendants become its children. After compat exec has
// ended, endGroup kills what is left of its group and reaps the members
// this process adopted. A member is told by its process group: a group
// id is not reused while any member, a zombie included, exists, and the
// only member this process started itself is compat exec, the leader,
// which exec.Cmd has reaped; so no child that exec.Cmd (or anything else
// in this process) waits for is ever reaped here.
//
// A subreaper adopts every orphan below it, not only the units': those of
// other programs the process runs (a native harness, a daemon it leaves
// behind) too. reapOrphans reaps them as they end, told apart from the
// children this process started by their process group and session. The
// process starts children only in its own process group or as leaders of
// new ones (exec.Cmd with Setpgid: vktarget, runners/local, the Redis
// suite's runtest), never in another group or a new session; so an ended
// child in another process group that it does not lead, or that leads a
// session, is an orphan it adopted.

var subreaper struct {
	once sync.Once
	err  error
}

// becomeSubreaper makes this process the reaper of its descendants'
// orphans, once.
func becomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("vkernel target: becoming a child subreaper: %w", err)
			return
		}
		go reapOrphans()
	})
	return subreaper.err
}

// reapOrphans reaps the orphans this process adopts, as they end: each
// time a child ends (SIGCHLD), the ended children it did not start.
func reapOrphans() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	self, own := os.Getpid(), unix.Getpgrp()
	for range ch {
		for _, pid := range childrenOf(self) {
			st, ok := procStat(pid)
			if !ok || st.state != 'Z' || st.pgrp == own || (st.pgrp == pid && st.session != pid) {
				continue
			}
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != unix.EINTR {
					break
				}
			}
		}
	}
}

// groupEndTimeout bounds endGroup: members that were sent SIGKILL end at
// once, unless the host is stalled.
const groupEndTimeout = 30 * time.Second

// endGroup kills every process left in the process group pgid, whose
// leader (compat exec) has ended and been reaped, and reaps those this
// process adopted, until the group has no member left.
func endGroup(pgid int) error {
	deadline := time.Now().Add(groupEndTimeout)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		// ESRCH: no member, not even a zombie.
		if err := unix.Kill(-pgid, unix.SIGKILL); err == unix.ESRCH {
			return nil
		}
		reapAdopted(pgid)
		if unix.Kill(-pgid, 0) == unix.ESRCH {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vkernel target: processes of the stopped unit's group %d still exist after %v", pgid, groupEndTimeout)
		}
		// A member whose parent is still dying becomes this process's
		// child when that parent is gone.
		time.Sleep(delay)
	}
}

// reapAdopted reaps the children of this process in group pgid that have
// ended, except the leader.
func reapAdopted(pgid int) {
	self := os.Getpid()
	for _, pid := range childrenOf(self) {
		if pid == pgid {
			continue
		}
		if st, ok := procStat(pid); !ok || st.pgrp != pgid {
			continue
		}
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != unix.EINTR {
				break
			}
		}
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var kids []int
	for _, n := range names {
		p, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, ok := procStat(p); ok && st.ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// stat is what /proc/PID/stat says of a process, a zombie included.
type stat struct {
	state               byte // R, S, Z, ...
	ppid, pgrp, session int
}

// procStat reads a process's state, parent, process group and session.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// pid (comm) state ppid pgrp session ...; comm may hold spaces and
	// parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return stat{}, false
	}
	var st stat
	st.state = f[0][0]
	var errs [3]error
	st.ppid, errs[0] = strconv.Atoi(string(f[1]))
	st.pgrp, errs[1] = strconv.Atoi(string(f[2]))
	st.session, errs[2] = strconv.Atoi(string(f[3]))
	return st, errs[0] == nil && errs[1] == nil && errs[2] == nil
}
