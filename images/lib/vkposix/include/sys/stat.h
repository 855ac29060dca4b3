/* vkposix: wasi-libc's <sys/stat.h>, plus the calls it hides because
 * preview1 has no file modes: chmod, fchmod, fchmodat, lchmod, umask. The
 * library implements them over the vkernel's mode calls, and stat, fstat,
 * lstat and fstatat report the host's permission bits, owner and group. */
#ifndef VKPOSIX_SYS_STAT_H
#define VKPOSIX_SYS_STAT_H

#include_next <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

int chmod(const char *, mode_t);
int fchmod(int, mode_t);
int fchmodat(int, const char *, mode_t, int);
int lchmod(const char *, mode_t);
mode_t umask(mode_t);

#ifdef __cplusplus
}
#endif

#endif
