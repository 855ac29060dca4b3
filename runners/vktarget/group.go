package vktarget

import (
	"bytes"
	"fmt"
	"os"
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
		}
	})
	return subreaper.err
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
		if _, pgrp, ok := procStat(pid); !ok || pgrp != pgid {
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
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// procStat reads a process's parent and process group from
// /proc/PID/stat, which a zombie still has.
func procStat(pid int) (ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	return ppid, pgrp, err1 == nil && err2 == nil
}
