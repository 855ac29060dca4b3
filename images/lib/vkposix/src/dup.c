/* dup, dup2, dup3 and fcntl's F_DUPFD over vkernel.fd_dup and
 * vkernel.fd_dup2 (wasi-libc has none: preview1 cannot duplicate an fd,
 * and its fd_renumber moves an fd rather than copying it). The copy shares
 * the open file description: offset, status flags. Preview1 has no
 * close-on-exec flag (O_CLOEXEC is 0 in wasi-libc): a spawned child gets
 * only the fds posix_spawn's file actions give it, so F_DUPFD_CLOEXEC is
 * F_DUPFD and dup3's O_CLOEXEC changes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "internal.h"

static int fail(int e) {
	errno = e;
	return -1;
}

static int dup_from(int fd, int min) {
	uint32_t got = 0;
	if (fd < 0)
		return fail(EBADF);
	if (min < 0)
		return fail(EINVAL);
	int e = __vkernel_fd_dup((uint32_t)fd, (uint32_t)min, &got);
	return e ? fail(e) : (int)got;
}

/* Weak, as chmod and friends are: a port's own dup2 (Redis keeps an
 * ENOSYS stub) links without a clash and is the one that runs, although
 * this file comes in with __wrap_fcntl. */
#define WEAK __attribute__((weak))

WEAK int dup(int fd) { return dup_from(fd, 0); }

WEAK int dup2(int fd, int to) {
	if (fd < 0 || to < 0)
		return fail(EBADF);
	int e = __vkernel_fd_dup2((uint32_t)fd, (uint32_t)to);
	return e ? fail(e) : to;
}

WEAK int dup3(int fd, int to, int flags) {
	if (fd == to || (flags & ~O_CLOEXEC))
		return fail(EINVAL);
	return dup2(fd, to);
}

int __real_fcntl(int, int, ...);

/* fcntl gains F_DUPFD and F_DUPFD_CLOEXEC (-Wl,--wrap=fcntl); every other
 * command is wasi-libc's, given its argument when it takes one. */
int __wrap_fcntl(int fd, int cmd, ...) {
	va_list ap;
	int arg;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		va_start(ap, cmd);
		arg = va_arg(ap, int);
		va_end(ap);
		return dup_from(fd, arg);
	case F_SETFD:
	case F_SETFL:
		va_start(ap, cmd);
		arg = va_arg(ap, int);
		va_end(ap);
		return __real_fcntl(fd, cmd, arg);
	}
	return __real_fcntl(fd, cmd);
}
