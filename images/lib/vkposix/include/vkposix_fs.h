/* vkposix: the vkernel's file-mode calls (vkernel/ABI.md, "Files: modes and
 * identity"), which the library's stat, chmod, access, open and mkdir use.
 * Each returns a WASI preview1 errno (0 success). */
#ifndef VKPOSIX_FS_H
#define VKPOSIX_FS_H

#include <stdint.h>
#include <wasi/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What fd_stat and path_stat write: preview1's filestat, then the host's
 * Linux st_mode, st_uid, st_gid, st_blksize, st_blocks and st_rdev. */
struct vkposix_stat {
	__wasi_filestat_t filestat;
	uint32_t mode, uid, gid, blksize;
	uint64_t blocks, rdev;
};

#define VKPOSIX_FS_IMPORT(name) __attribute__((import_module("vkernel"), import_name(#name)))

VKPOSIX_FS_IMPORT(fd_stat)
int32_t __vkernel_fd_stat(int32_t fd, struct vkposix_stat *buf);
VKPOSIX_FS_IMPORT(path_stat)
int32_t __vkernel_path_stat(int32_t fd, uint32_t lookupflags, const char *path, uint32_t path_len,
                            struct vkposix_stat *buf);
VKPOSIX_FS_IMPORT(fd_chmod)
int32_t __vkernel_fd_chmod(int32_t fd, uint32_t mode);
VKPOSIX_FS_IMPORT(path_chmod)
int32_t __vkernel_path_chmod(int32_t fd, uint32_t lookupflags, const char *path, uint32_t path_len, uint32_t mode);
VKPOSIX_FS_IMPORT(path_access)
int32_t __vkernel_path_access(int32_t fd, uint32_t lookupflags, const char *path, uint32_t path_len, uint32_t amode);
VKPOSIX_FS_IMPORT(proc_cred)
int32_t __vkernel_proc_cred(uint32_t *ids /* [2]: uid, gid */);

#ifdef __cplusplus
}
#endif

#endif
