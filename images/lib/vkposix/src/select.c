/* select and pselect with exceptfds (-Wl,--wrap=pselect; wasi-libc's
 * select calls its pselect). wasi-libc answers ENOSYS to any call whose
 * exceptfds holds a descriptor, since preview1 cannot poll for exceptional
 * conditions. On Linux, a socket's exceptional condition is pending
 * out-of-band data, which vkernel sockets never carry (MSG_OOB is
 * EOPNOTSUPP, ABI.md "Sockets"), and pipes and files have none: so no
 * descriptor is ever reported in exceptfds. The call checks that each one
 * is open (EBADF, as Linux), empties the set and waits on the others, so
 * that programs which always pass their sockets in exceptfds (Python's
 * asyncore, Tcl's event loop) work instead of failing. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

int __real_pselect(int nfds, fd_set *restrict readfds, fd_set *restrict writefds, fd_set *restrict errorfds,
                   const struct timespec *restrict timeout, const sigset_t *sigmask);

int __wrap_pselect(int nfds, fd_set *restrict readfds, fd_set *restrict writefds, fd_set *restrict errorfds,
                   const struct timespec *restrict timeout, const sigset_t *sigmask) {
	if (errorfds != NULL && errorfds->__nfds > 0) {
		for (size_t i = 0; i < errorfds->__nfds; i++) {
			int fd = errorfds->__fds[i];
			if (fd < nfds && fcntl(fd, F_GETFL) < 0) {
				errno = EBADF;
				return -1;
			}
		}
		FD_ZERO(errorfds);
	}
	return __real_pselect(nfds, readfds, writefds, errorfds, timeout, sigmask);
}
