/* sendfile, as Linux's, over pread (or read) and write: preview1 and the
 * vkernel have no call that copies between fds, so the bytes pass through
 * the guest's memory. in_fd must be a regular file (Linux: a file that
 * supports mmap; a pipe or socket is EINVAL), out_fd anything write takes.
 * With offset, in_fd's own offset is left alone and *offset moves on by
 * what was sent; without, in_fd's offset moves on by exactly what was sent
 * (a short write seeks back over what was read and not written). */
#include <errno.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* chunk is the most copied per read and write: what a pipe holds. */
enum { chunk = 64 << 10 };

VKPOSIX_WEAK ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
	struct stat st;
	if (fstat(in_fd, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (offset && *offset < 0) {
		errno = EINVAL;
		return -1;
	}
	if (count > 0x7ffff000) /* Linux's MAX_RW_COUNT */
		count = 0x7ffff000;
	char stackbuf[4096];
	size_t cap = count < chunk ? count : chunk;
	char *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	size_t sent = 0;
	int err = 0;
	while (sent < count) {
		size_t want = count - sent < cap ? count - sent : cap;
		ssize_t r = offset ? pread(in_fd, buf, want, *offset + (off_t)sent) : read(in_fd, buf, want);
		if (r < 0) {
			err = errno;
			break;
		}
		if (r == 0)
			break;
		ssize_t w = 0;
		while (w < r) {
			ssize_t k = write(out_fd, buf + w, (size_t)(r - w));
			if (k < 0) {
				err = errno;
				break;
			}
			w += k;
		}
		sent += (size_t)w;
		if (w < r) {
			if (!offset)
				(void)lseek(in_fd, -(off_t)(r - w), SEEK_CUR);
			break;
		}
	}
	if (buf != stackbuf)
		free(buf);
	if (offset)
		*offset += (off_t)sent;
	/* As Linux: an error after some bytes went is not reported; the count
	 * of those bytes is. */
	if (sent == 0 && err) {
		errno = err;
		return -1;
	}
	return (ssize_t)sent;
}
