/* sendfile, copy_file_range and splice, as Linux's, over read/pread and
 * write/pwrite: preview1 and the vkernel have no call that moves bytes
 * between fds, so they pass through the guest's memory, 64 KiB at a time.
 * Where a call takes an offset for an fd, that fd's own offset is left
 * alone and the offset moves on by what was copied; without one, the fd's
 * offset moves on by exactly what was copied (a short write seeks the
 * input back over what was read and not written). As Linux, an error after
 * some bytes were copied is not reported: their count is. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* chunk is the most copied per read and write: what a pipe holds. */
enum { chunk = 64 << 10 };

/* Linux's MAX_RW_COUNT: no call moves more at once. */
#define MAX_RW 0x7ffff000u

/* pump copies up to count bytes from in to out, at *in_off and *out_off
 * when given; once stops after the first read that gave bytes (splice: a
 * pipe is not read again once it gave something). It returns the count
 * copied, or -1 with errno when nothing was. */
static ssize_t pump(int in, off_t *in_off, int out, off_t *out_off, size_t count, int once) {
	if ((in_off && *in_off < 0) || (out_off && *out_off < 0)) {
		errno = EINVAL;
		return -1;
	}
	if (count > MAX_RW)
		count = MAX_RW;
	char stackbuf[4096];
	size_t cap = count < chunk ? count : chunk;
	char *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	size_t done = 0;
	int err = 0;
	while (done < count) {
		size_t want = count - done < cap ? count - done : cap;
		ssize_t r = in_off ? pread(in, buf, want, *in_off + (off_t)done) : read(in, buf, want);
		if (r < 0) {
			err = errno;
			break;
		}
		if (r == 0)
			break;
		ssize_t w = 0;
		while (w < r) {
			ssize_t k = out_off ? pwrite(out, buf + w, (size_t)(r - w), *out_off + (off_t)(done + (size_t)w))
			                    : write(out, buf + w, (size_t)(r - w));
			if (k < 0) {
				err = errno;
				break;
			}
			w += k;
		}
		done += (size_t)w;
		if (w < r) {
			if (!in_off)
				(void)lseek(in, -(off_t)(r - w), SEEK_CUR);
			break;
		}
		if (once)
			break;
	}
	if (buf != stackbuf)
		free(buf);
	if (in_off)
		*in_off += (off_t)done;
	if (out_off)
		*out_off += (off_t)done;
	if (done == 0 && err) {
		errno = err;
		return -1;
	}
	return (ssize_t)done;
}

/* sendfile: in_fd must be a regular file (Linux: one that supports mmap;
 * a pipe or socket is EINVAL, or ESPIPE with an offset, which Linux checks
 * first), out_fd anything write takes. */
VKPOSIX_WEAK ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
	struct stat st;
	if (fstat(in_fd, &st) != 0)
		return -1;
	if (offset && S_ISFIFO(st.st_mode)) {
		errno = ESPIPE;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return pump(in_fd, offset, out_fd, NULL, count, 0);
}

/* copy_file_range: between regular files only (a directory is EISDIR,
 * anything else EINVAL), no flags, as Linux 5.19. */
VKPOSIX_WEAK ssize_t copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
                                     unsigned flags) {
	if (flags) {
		errno = EINVAL;
		return -1;
	}
	struct stat si, so;
	if (fstat(fd_in, &si) != 0 || fstat(fd_out, &so) != 0)
		return -1;
	if (S_ISDIR(si.st_mode) || S_ISDIR(so.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!S_ISREG(si.st_mode) || !S_ISREG(so.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return pump(fd_in, off_in, fd_out, off_out, len, 0);
}

/* splice: one end must be a pipe (EINVAL otherwise), and a pipe takes no
 * offset (ESPIPE). One read: what a pipe holds now, or up to 64 KiB of a
 * file. The flags change nothing (SPLICE_F_NONBLOCK: the fds' own
 * non-blocking mode applies). preview1 shows a pipe and a socket alike, so
 * a socket counts as a pipe. */
VKPOSIX_WEAK ssize_t splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned flags) {
	(void)flags;
	struct stat si, so;
	if (fstat(fd_in, &si) != 0 || fstat(fd_out, &so) != 0)
		return -1;
	int pin = S_ISFIFO(si.st_mode), pout = S_ISFIFO(so.st_mode);
	if (!pin && !pout) {
		errno = EINVAL;
		return -1;
	}
	if ((pin && off_in) || (pout && off_out)) {
		errno = ESPIPE;
		return -1;
	}
	return pump(fd_in, off_in, fd_out, off_out, len, 1);
}
