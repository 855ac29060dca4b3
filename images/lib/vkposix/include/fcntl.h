/* vkposix: wasi-libc's <fcntl.h>, plus the fcntl commands that duplicate
 * an fd (F_DUPFD, F_DUPFD_CLOEXEC: Linux's numbers), which the library's
 * fcntl implements over vkernel.fd_dup, and Linux's splice with its flags
 * (src/copy.c). */
#ifndef VKPOSIX_FCNTL_H
#define VKPOSIX_FCNTL_H

#include_next <fcntl.h>
#include <sys/types.h>

#ifndef F_DUPFD
#define F_DUPFD 0
#endif
#ifndef F_DUPFD_CLOEXEC
#define F_DUPFD_CLOEXEC 1030
#endif

#ifndef SPLICE_F_MOVE
#define SPLICE_F_MOVE 1
#define SPLICE_F_NONBLOCK 2
#define SPLICE_F_MORE 4
#define SPLICE_F_GIFT 8
#endif

#ifdef __cplusplus
extern "C" {
#endif

ssize_t splice(int, off_t *, int, off_t *, size_t, unsigned);

#ifdef __cplusplus
}
#endif

#endif
