/* vkposix: wasi-libc's <fcntl.h>, plus the fcntl commands that duplicate
 * an fd (F_DUPFD, F_DUPFD_CLOEXEC: Linux's numbers), which the library's
 * fcntl implements over vkernel.fd_dup. */
#ifndef VKPOSIX_FCNTL_H
#define VKPOSIX_FCNTL_H

#include_next <fcntl.h>

#ifndef F_DUPFD
#define F_DUPFD 0
#endif
#ifndef F_DUPFD_CLOEXEC
#define F_DUPFD_CLOEXEC 1030
#endif

#endif
