/* wasi-libc's blocking calls, wrapped (-Wl,--wrap=__wasi_...): when the
 * host answers EINTR because a caught signal arrived, the handlers run
 * here; then the call returns EINTR, or is made again where Linux restarts
 * it for an SA_RESTART handler (reads, writes, accept; never poll, select
 * or sleep). The file also holds the program's start (constructors, then
 * main) and the start-up constructor, since every program that links the
 * library pulls it in through the wrappers. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#include "internal.h"

__wasi_errno_t __real___wasi_fd_read(__wasi_fd_t, const __wasi_iovec_t *, size_t, __wasi_size_t *);
__wasi_errno_t __real___wasi_fd_write(__wasi_fd_t, const __wasi_ciovec_t *, size_t, __wasi_size_t *);
__wasi_errno_t __real___wasi_sock_recv(__wasi_fd_t, const __wasi_iovec_t *, size_t, __wasi_riflags_t, __wasi_size_t *,
                                       __wasi_roflags_t *);
__wasi_errno_t __real___wasi_sock_send(__wasi_fd_t, const __wasi_ciovec_t *, size_t, __wasi_siflags_t, __wasi_size_t *);
__wasi_errno_t __real___wasi_sock_accept(__wasi_fd_t, __wasi_fdflags_t, __wasi_fd_t *);

__wasi_errno_t __wrap___wasi_poll_oneoff(const __wasi_subscription_t *in, __wasi_event_t *out, __wasi_size_t n,
                                         __wasi_size_t *nevents) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_poll_oneoff(in, out, n, nevents);
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(0))
			return e;
	}
}

__wasi_errno_t __wrap___wasi_fd_read(__wasi_fd_t fd, const __wasi_iovec_t *iovs, size_t n, __wasi_size_t *nread) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_fd_read(fd, iovs, n, nread);
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(1))
			return e;
	}
}

__wasi_errno_t __wrap___wasi_fd_write(__wasi_fd_t fd, const __wasi_ciovec_t *iovs, size_t n, __wasi_size_t *nwritten) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_fd_write(fd, iovs, n, nwritten);
		if (e == __WASI_ERRNO_PIPE)
			/* The host sent SIGPIPE with EPIPE: a caught one runs now. */
			vkposix_take_signals();
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(1))
			return e;
	}
}

__wasi_errno_t __wrap___wasi_sock_recv(__wasi_fd_t fd, const __wasi_iovec_t *iovs, size_t n, __wasi_riflags_t flags,
                                       __wasi_size_t *nread, __wasi_roflags_t *oflags) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_sock_recv(fd, iovs, n, flags, nread, oflags);
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(1))
			return e;
	}
}

__wasi_errno_t __wrap___wasi_sock_send(__wasi_fd_t fd, const __wasi_ciovec_t *iovs, size_t n, __wasi_siflags_t flags,
                                       __wasi_size_t *nwritten) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_sock_send(fd, iovs, n, flags, nwritten);
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(1))
			return e;
	}
}

__wasi_errno_t __wrap___wasi_sock_accept(__wasi_fd_t fd, __wasi_fdflags_t flags, __wasi_fd_t *newfd) {
	for (;;) {
		__wasi_errno_t e = __real___wasi_sock_accept(fd, flags, newfd);
		if (e != __WASI_ERRNO_INTR || !__vkposix_interrupted(1))
			return e;
	}
}

/* The file part's umask (fsmode.c): weak, so that a program linking only
 * the process part does not pull the file part in for it. */
extern mode_t __vkposix_umask __attribute__((weak));

/* A spawned child starts in the directory its parent asked for, with the
 * signal mask and umask its parent gave it (VKPOSIX_SIGMASK_ENV and
 * VKPOSIX_UMASK_ENV, which main does not see). After wasi-libc's own
 * constructors (the preopens). */
__attribute__((constructor(101))) static void vkposix_start(void) {
	char dir[4096];
	uint32_t n = 0;
	if (__vkernel_proc_initial_cwd(dir, sizeof dir - 1, &n) == 0 && n < sizeof dir) {
		dir[n] = 0;
		(void)chdir(dir);
	}
	const char *mask = getenv(VKPOSIX_SIGMASK_ENV);
	if (mask) {
		char *end;
		sigset_t set = (sigset_t)strtoull(mask, &end, 16);
		if (*mask && !*end)
			sigprocmask(SIG_SETMASK, &set, NULL);
		unsetenv(VKPOSIX_SIGMASK_ENV);
	}
	const char *um = getenv(VKPOSIX_UMASK_ENV);
	if (um) {
		char *end;
		unsigned long m = strtoul(um, &end, 8);
		if (*um && !*end && m <= 0777 && &__vkposix_umask)
			__vkposix_umask = (mode_t)m;
		unsetenv(VKPOSIX_UMASK_ENV);
	}
}

/* The program's constructors run here, once, before main
 * (-Wl,--wrap=__original_main: wasi-libc's _start calls __original_main,
 * which calls main). Left to the linker, they would run at the start of
 * every exported function, since wasm-ld wraps each export of a command
 * whose code never calls __wasm_call_ctors itself with
 * __wasm_call_ctors and __wasm_call_dtors, and a fork child enters through
 * the export vkernel_fork_child: in a copy of memory where they have run
 * already, they would run again and undo what the parent did since (the
 * preopens scanned again, a constructor's chdir over the parent's). With
 * this call in the program, wasm-ld wraps no export. exit runs what
 * __wasm_call_dtors would (atexit handlers, stdio flush), main's result as
 * the status. */
extern void __wasm_call_ctors(void);
int __real___original_main(void);

int __wrap___original_main(void) {
	__wasm_call_ctors();
	exit(__real___original_main());
}
