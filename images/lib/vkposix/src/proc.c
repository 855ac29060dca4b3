/* Process ids, pipes, waiting, and the interval timer. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

pid_t getpid(void) {
	uint32_t pid = 0, ppid = 0;
	__vkernel_proc_id(&pid, &ppid);
	return (pid_t)pid;
}

pid_t getppid(void) {
	uint32_t pid = 0, ppid = 0;
	__vkernel_proc_id(&pid, &ppid);
	return (pid_t)ppid;
}

/* Every vkernel process leads its own process group and session. */
pid_t getpgrp(void) { return getpid(); }
pid_t getpgid(pid_t pid) { return pid == 0 ? getpid() : pid; }
pid_t getsid(pid_t pid) { return pid == 0 ? getpid() : pid; }

int pipe(int fds[2]) {
	uint32_t ends[2];
	int e = __vkernel_fd_pipe(ends);
	if (e) {
		errno = e;
		return -1;
	}
	fds[0] = (int)ends[0];
	fds[1] = (int)ends[1];
	return 0;
}

int pipe2(int fds[2], int flags) {
	if (flags & ~(O_NONBLOCK | O_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	if (pipe(fds) < 0)
		return -1;
	/* O_CLOEXEC is 0 in wasi-libc: nothing is inherited unless listed. */
	if (flags & O_NONBLOCK) {
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		fcntl(fds[1], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

pid_t waitpid(pid_t pid, int *status, int options) {
	if (options & ~(WNOHANG | WUNTRACED | WCONTINUED)) {
		errno = EINVAL;
		return -1;
	}
	/* Each child is a group of its own: 0 (the caller's group) is any
	 * child, -pgid that child. */
	int32_t which = pid;
	if (pid == 0)
		which = -1;
	else if (pid < -1)
		which = -pid;
	for (;;) {
		uint32_t got = 0, st = 0;
		int e = __vkernel_proc_wait(which, (options & WNOHANG) ? VKPOSIX_WNOHANG : 0, &got, &st);
		if (e == EINTR && __vkposix_interrupted(1))
			continue;
		if (e) {
			errno = e;
			return -1;
		}
		if (status && got)
			*status = (int)st;
		return (pid_t)got;
	}
}

pid_t wait(int *status) { return waitpid(-1, status, 0); }

static int64_t ns(const struct timeval *tv) { return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000; }

static void to_timeval(uint64_t v, struct timeval *tv) {
	tv->tv_sec = v / 1000000000;
	tv->tv_usec = (v % 1000000000 + 999) / 1000;
	if (tv->tv_usec == 1000000) {
		tv->tv_sec++;
		tv->tv_usec = 0;
	}
}

int setitimer(int which, const struct itimerval *restrict value, struct itimerval *restrict old) {
	if (which != ITIMER_REAL || !value || value->it_value.tv_sec < 0 || value->it_value.tv_usec < 0 ||
	    value->it_value.tv_usec >= 1000000 || value->it_interval.tv_sec < 0 || value->it_interval.tv_usec < 0 ||
	    value->it_interval.tv_usec >= 1000000) {
		errno = EINVAL;
		return -1;
	}
	uint64_t was[2] = {0, 0};
	int e = __vkernel_proc_setitimer(ns(&value->it_value), ns(&value->it_interval), was);
	if (e) {
		errno = e;
		return -1;
	}
	if (old) {
		to_timeval(was[0], &old->it_value);
		to_timeval(was[1], &old->it_interval);
	}
	return 0;
}

int getitimer(int which, struct itimerval *value) {
	if (which != ITIMER_REAL) {
		errno = EINVAL;
		return -1;
	}
	uint64_t now[2] = {0, 0};
	int e = __vkernel_proc_setitimer(-1, 0, now);
	if (e) {
		errno = e;
		return -1;
	}
	to_timeval(now[0], &value->it_value);
	to_timeval(now[1], &value->it_interval);
	return 0;
}

unsigned alarm(unsigned seconds) {
	struct itimerval it = {{0, 0}, {(time_t)seconds, 0}}, old;
	if (setitimer(ITIMER_REAL, &it, &old) < 0)
		return 0;
	/* Rounded up, as a pending alarm is never reported as 0. */
	return old.it_value.tv_sec + (old.it_value.tv_usec > 0);
}
