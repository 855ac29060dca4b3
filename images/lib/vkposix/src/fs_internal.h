/* vkposix internals shared by the file-mode files (fsmode.c, chmod.c,
 * ids.c). */
#ifndef VKPOSIX_FS_INTERNAL_H
#define VKPOSIX_FS_INTERNAL_H

#include <sys/stat.h>

/* __vkposix_umask is the process's file mode creation mask (umask). */
extern mode_t __vkposix_umask;

/* __vkposix_fchmodat is fchmodat over the vkernel's path_chmod, for the
 * library's own use (chmod.c's public functions call it). */
int __vkposix_fchmodat(int dirfd, const char *path, mode_t mode, int flag);

/* __vkposix_relpath resolves a path as wasi-libc does (the working
 * directory, then the longest matching mount) to a mount's fd and the
 * path relative to it; -1 when no mount holds it. */
int __vkposix_relpath(const char *path, const char **rel);

/* __vkposix_above is what a path that no mount holds is: VKPOSIX_ABOVE, a
 * directory above a mount ("/tmp" when "/tmp/t" is mounted);
 * VKPOSIX_IN_ABOVE, a name in such a directory that is nothing else
 * (missing); VKPOSIX_OUTSIDE otherwise. */
enum { VKPOSIX_OUTSIDE, VKPOSIX_ABOVE, VKPOSIX_IN_ABOVE };
int __vkposix_above(const char *path);

/* __vkposix_above_stat fills st for a directory above the mounts. */
void __vkposix_above_stat(const char *path, struct stat *st);

#endif
