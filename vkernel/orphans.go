package vkernel

import (
	"os"
	"os/signal"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Orphans. Every vkernel child host process is its tree's subreaper
// (PR_SET_CHILD_SUBREAPER, runChild): when one of its children dies
// before its own children (killed outright after its grace, or ending
// while a child it was starting had not been recorded yet), those are
// re-parented to it. They die at once of their parent-death signal
// (SIGKILL, as the process model ends a process's children with it: the
// same as at the end of a non-shared exec's guest), and stay zombies
// until this process waits for them. A host process that runs one guest
// and exits leaves them to its own parent; a shared host (share.go) lives
// on through many requests, so it reaps them as init does: on each
// SIGCHLD, the zombies among its children that it did not start itself
// are waited for. The children it started are left to their owners
// (proc_wait, Process.Close, the lifeline's teardown), which must be the
// ones to see how they ended.

// reapOrphansOnSIGCHLD reaps orphans each time a child process of this
// process changes state, for the rest of the process's life. Signals that
// come while it reaps are merged into one more round (the channel holds
// one): each round reaps every orphan there is.
func reapOrphansOnSIGCHLD() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for {
		reapOrphans()
		<-ch
	}
}

// reapOrphans waits for the zombies among this process's children that it
// did not start (startHost records each child it starts: childStarted),
// and returns their pids.
func reapOrphans() []int {
	candidates := zombieChildren(os.Getpid())
	if len(candidates) == 0 {
		return nil
	}
	// Under live's write lock no child is being started: startHost holds
	// its read lock from before the fork until childStarted has recorded
	// the pid. So a zombie child not recorded now is not one whose start
	// is under way (a child that died at once, before being recorded).
	live.Lock()
	defer live.Unlock()
	catching.Lock()
	known := make(map[int]bool, len(candidates))
	for _, pid := range candidates {
		_, known[pid] = catching.kids[pid]
	}
	catching.Unlock()
	var reaped []int
	for _, pid := range candidates {
		if known[pid] {
			continue
		}
		var ws unix.WaitStatus
		for {
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err == nil && got == pid {
				reaped = append(reaped, pid)
			}
			break
		}
	}
	return reaped
}

// zombieChildren returns the pids of the processes in /proc whose parent
// is ppid and which have ended (state Z). /proc is scanned: the per-task
// children lists (CONFIG_PROC_CHILDREN) are not in every kernel.
func zombieChildren(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	buf := make([]byte, 512)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, parent, ok := procStat(pid, buf)
		if ok && parent == ppid && state == "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads a process's state and parent from /proc/PID/stat, with
// buf for the read.
func procStat(pid int, buf []byte) (state string, ppid int, ok bool) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, false // ended and reaped meanwhile
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	s := string(buf[:n])
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// endAll ends this process's children before it exits (its lifeline was
// closed): each exec's children in order (their lifelines closed, killed
// after a grace), then any child whose start was under way, and reaps
// them all, orphans included. No child starts once it has begun: one
// started after the waits below would be left to its parent-death
// signal, and a zombie of this process's subreaper.
func endAll(ctls []*procCtl) {
	// The write lock waits for a start under way (startHost holds the
	// read lock until childStarted has recorded the pid).
	live.Lock()
	live.ending = true
	live.Unlock()
	for _, c := range ctls {
		for _, pid := range c.childPids() {
			c.teardown(pid)
		}
	}
	// A child recorded but not yet an exec's (its exec was still handing
	// it what to run) has started nothing: it is killed.
	catching.Lock()
	var started []int
	for pid := range catching.kids {
		started = append(started, pid)
	}
	catching.Unlock()
	for _, pid := range started {
		killChild(pid)
	}
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && err != unix.EINTR {
			break
		}
	}
}

// killChild sends SIGKILL to pid if it is still a child of this process
// (through a pidfd opened first: a pid reaped meanwhile and reused names
// another process, which the pidfd never does).
func killChild(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if _, ppid, ok := procStat(pid, make([]byte, 512)); ok && ppid == os.Getpid() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
}
