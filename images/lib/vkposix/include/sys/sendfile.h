/* sys/sendfile.h, missing from wasi-libc: Linux's sendfile, which vkposix
 * implements as a copy loop in the guest (src/sendfile.c). */
#ifndef VKPOSIX_SYS_SENDFILE_H
#define VKPOSIX_SYS_SENDFILE_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count);

#ifdef __cplusplus
}
#endif

#endif
