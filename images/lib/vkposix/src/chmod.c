/* chmod, fchmod, fchmodat, lchmod and umask, which wasi-libc lacks, over
 * the vkernel's path_chmod and fd_chmod. Weak, in a file of their own: a
 * port's own definition of any of them wins without a clash (and then runs
 * in place of this one). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fs_internal.h"
#include "vkposix_fs.h"

#define WEAK __attribute__((weak))

WEAK int chmod(const char *path, mode_t mode) { return __vkposix_fchmodat(AT_FDCWD, path, mode, 0); }

WEAK int lchmod(const char *path, mode_t mode) { return __vkposix_fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW); }

WEAK int fchmodat(int dirfd, const char *path, mode_t mode, int flag) { return __vkposix_fchmodat(dirfd, path, mode, flag); }

WEAK int fchmod(int fd, mode_t mode) {
	int32_t e = __vkernel_fd_chmod(fd, mode & 07777);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

/* umask sets the mask open (O_CREAT) and mkdir apply to the mode they are
 * given. Each process starts with 022; a vkposix_fork child has its
 * parent's. */
WEAK mode_t umask(mode_t mask) {
	mode_t old = __vkposix_umask;
	__vkposix_umask = mask & 0777;
	return old;
}
