/* File modes and the directories above the mounts, wrapped into wasi-libc
 * (-Wl,--wrap=..., see ldflags).
 *
 * Modes: preview1's filestat has no permission bits, owner or group, so
 * wasi-libc's stat family fills st_mode with the file type alone and its
 * access() checks fd rights, not modes. Every path stat of wasi-libc
 * (stat, lstat, fstatat) ends in __wasilibc_nocwd_fstatat(dirfd, relpath),
 * every access in __wasilibc_nocwd_faccessat, and fstat is its own symbol:
 * those three are replaced by the vkernel's path_stat, path_access and
 * fd_stat (one host call each, as before). preview1's path_open and
 * path_create_directory take no mode: open with O_CREAT and mkdir set the
 * mode asked for, less the umask, once the file is created.
 *
 * Above the mounts: wasi-libc maps an absolute path to the mount whose
 * guest path is its longest prefix, and answers ENOTCAPABLE itself, before
 * any host call, for a path no mount holds. A mount at /tmp/t makes /tmp
 * and / exist for the guest all the same (nginx makes every directory of a
 * path with mkdir and takes EEXIST as done). So, where wasi-libc answered
 * ENOTCAPABLE, the directories above the mounts are a read-only tree of
 * directories, mode 0555, owned by uid 0: stat and access see them, mkdir
 * of one is EEXIST, a new name in one is ENOENT to stat and EROFS to mkdir.
 * Anything else no mount holds stays ENOTCAPABLE. A path with ".." is made
 * clean before wasi-libc maps it to a mount, so that ".." leads out of a
 * mount (and back into it) as natively, where the host would refuse a ".."
 * above the mount root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>
#include <wasi/libc-find-relpath.h>

#include "fs_internal.h"
#include "vkposix_fs.h"

_Static_assert(sizeof(struct vkposix_stat) == 96, "vkernel fd_stat/path_stat record");

mode_t __vkposix_umask = 022;

static struct timespec timespec_of(__wasi_timestamp_t ns) {
	return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

/* to_stat converts the vkernel's record (Linux st_mode) to wasi-libc's
 * struct stat, whose S_IFIFO is its S_IFSOCK. */
static void to_stat(const struct vkposix_stat *in, struct stat *out) {
	mode_t type = 0;
	switch (in->mode & 0170000) {
	case 0140000: type = S_IFSOCK; break;
	case 0120000: type = S_IFLNK; break;
	case 0100000: type = S_IFREG; break;
	case 0060000: type = S_IFBLK; break;
	case 0040000: type = S_IFDIR; break;
	case 0020000: type = S_IFCHR; break;
	case 0010000: type = S_IFIFO; break;
	}
	*out = (struct stat){
		.st_dev = in->filestat.dev,
		.st_ino = in->filestat.ino,
		.st_nlink = in->filestat.nlink,
		.st_mode = type | (in->mode & 07777),
		.st_uid = in->uid,
		.st_gid = in->gid,
		.st_rdev = in->rdev,
		.st_size = in->filestat.size,
		.st_blksize = in->blksize,
		.st_blocks = in->blocks,
		.st_atim = timespec_of(in->filestat.atim),
		.st_mtim = timespec_of(in->filestat.mtim),
		.st_ctim = timespec_of(in->filestat.ctim),
	};
}

static int fail(int32_t e) {
	errno = e;
	return -1;
}

static uint32_t lookupflags(int flag) {
	return (flag & AT_SYMLINK_NOFOLLOW) ? 0 : __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
}

int __wrap___wasilibc_nocwd_fstatat(int fd, const char *path, struct stat *st, int flag) {
	struct vkposix_stat vs;
	int32_t e = __vkernel_path_stat(fd, lookupflags(flag), path, strlen(path), &vs);
	if (e != 0)
		return fail(e);
	to_stat(&vs, st);
	return 0;
}

int __wrap_fstat(int fd, struct stat *st) {
	struct vkposix_stat vs;
	int32_t e = __vkernel_fd_stat(fd, &vs);
	if (e != 0)
		return fail(e);
	to_stat(&vs, st);
	return 0;
}

int __wrap___wasilibc_nocwd_faccessat(int fd, const char *path, int amode, int flag) {
	if ((amode & ~(F_OK | R_OK | W_OK | X_OK)) != 0 || (flag & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW)) != 0)
		return fail(EINVAL);
	int32_t e = __vkernel_path_access(fd, lookupflags(flag), path, strlen(path), amode);
	return e != 0 ? fail(e) : 0;
}

/* has_dotdot reports whether a path has a ".." component. */
static int has_dotdot(const char *path) {
	for (const char *c = path; (c = strstr(c, "..")) != NULL; c += 2)
		if ((c == path || c[-1] == '/') && (c[2] == 0 || c[2] == '/'))
			return 1;
	return 0;
}

static int absolute(const char *path, char *out);

int __real___wasilibc_find_relpath_alloc(const char *, const char **, char **, size_t *, int);

/* Every path wasi-libc resolves (the working directory, then the mount)
 * comes here. It joins the working directory and the path as strings and
 * hands what follows the mount's guest path to the host, which refuses a
 * ".." that climbs above the mount's root (EPERM): "/tmp/t/.." with a
 * mount at /tmp/t, or ".." with the working directory there. A path with
 * ".." is made absolute and clean here first, so that ".." leaves a mount
 * as it does natively (the vkernel resolves ".." lexically inside a mount
 * too). */
int __wrap___wasilibc_find_relpath_alloc(const char *path, const char **abs, char **rel, size_t *rel_len,
                                         int can_realloc) {
	char clean[PATH_MAX + 1];
	if (has_dotdot(path) && absolute(path, clean)) {
		size_t n = strlen(path), c = strlen(clean);
		if (path[n - 1] == '/' && c > 1) {
			/* A trailing slash says the name must be a directory. */
			clean[c] = '/';
			clean[c + 1] = 0;
		}
		path = clean;
	}
	return __real___wasilibc_find_relpath_alloc(path, abs, rel, rel_len, can_realloc);
}

int __vkposix_relpath(const char *path, const char **rel) {
	static char *buf;
	static size_t len;
	const char *abs;
	if (__wasilibc_find_relpath_alloc) {
		int fd = __wasilibc_find_relpath_alloc(path, &abs, &buf, &len, 1);
		*rel = buf;
		return fd;
	}
	return __wasilibc_find_abspath(path, &abs, rel);
}

int __vkposix_fchmodat(int dirfd, const char *path, mode_t mode, int flag) {
	if ((flag & ~AT_SYMLINK_NOFOLLOW) != 0)
		return fail(EINVAL);
	const char *rel = path;
	if (dirfd == AT_FDCWD || path[0] == '/') {
		dirfd = __vkposix_relpath(path, &rel);
		if (dirfd < 0) {
			switch (__vkposix_above(path)) {
			case VKPOSIX_ABOVE: return fail(EROFS);
			case VKPOSIX_IN_ABOVE: return fail(ENOENT);
			}
			return fail(ENOTCAPABLE);
		}
	}
	int32_t e = __vkernel_path_chmod(dirfd, lookupflags(flag), rel, strlen(rel), mode & 07777);
	return e != 0 ? fail(e) : 0;
}

/* The mounts' guest paths, read from the preopens once. */
static char **mounts;
static int nmounts, mounts_read;

static void read_mounts(void) {
	if (mounts_read)
		return;
	mounts_read = 1;
	for (__wasi_fd_t fd = 3;; fd++) {
		__wasi_prestat_t ps;
		if (__wasi_fd_prestat_get(fd, &ps) != 0)
			return;
		if (ps.tag != __WASI_PREOPENTYPE_DIR)
			continue;
		size_t n = ps.u.dir.pr_name_len;
		char *name = malloc(n + 1);
		char **grown = realloc(mounts, (nmounts + 1) * sizeof *mounts);
		if (!name || !grown) {
			free(name);
			return;
		}
		mounts = grown;
		if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)name, n) != 0) {
			free(name);
			return;
		}
		name[n] = 0;
		mounts[nmounts++] = name;
	}
}

/* absolute writes the clean absolute form of path (the working directory
 * before a relative one; ".", ".." and repeated slashes resolved
 * lexically) into out, PATH_MAX bytes; 0 when it does not fit. */
static int absolute(const char *path, char *out) {
	char whole[PATH_MAX * 2];
	if (path[0] == '/') {
		if (strlen(path) >= sizeof whole)
			return 0;
		strcpy(whole, path);
	} else {
		if (!getcwd(whole, PATH_MAX))
			return 0;
		size_t n = strlen(whole);
		if (n + 1 + strlen(path) >= sizeof whole)
			return 0;
		whole[n] = '/';
		strcpy(whole + n + 1, path);
	}
	size_t o = 0;
	for (char *c = whole; *c;) {
		while (*c == '/')
			c++;
		char *end = c;
		while (*end && *end != '/')
			end++;
		size_t len = end - c;
		if (len == 0 || (len == 1 && c[0] == '.')) {
		} else if (len == 2 && c[0] == '.' && c[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o + 1 + len >= PATH_MAX)
				return 0;
			out[o++] = '/';
			memcpy(out + o, c, len);
			o += len;
		}
		c = end;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = 0;
	return 1;
}

/* is_above reports whether the clean absolute path abs is a directory
 * above some mount's guest path. */
static int is_above(const char *abs) {
	size_t n = strlen(abs);
	for (int i = 0; i < nmounts; i++) {
		const char *m = mounts[i];
		if (strcmp(abs, "/") == 0 ? strcmp(m, "/") != 0 : strncmp(m, abs, n) == 0 && m[n] == '/')
			return 1;
	}
	return 0;
}

int __vkposix_above(const char *path) {
	char abs[PATH_MAX];
	read_mounts();
	if (!absolute(path, abs))
		return VKPOSIX_OUTSIDE;
	if (is_above(abs))
		return VKPOSIX_ABOVE;
	char *slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = 0;
	else
		*slash = 0;
	return is_above(abs) ? VKPOSIX_IN_ABOVE : VKPOSIX_OUTSIDE;
}

void __vkposix_above_stat(const char *path, struct stat *st) {
	char abs[PATH_MAX];
	uint64_t h = 1469598103934665603ull; /* FNV-1a of the clean path: a stable inode */
	if (absolute(path, abs))
		for (const char *c = abs; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
	*st = (struct stat){.st_mode = S_IFDIR | 0555, .st_nlink = 2, .st_ino = h, .st_blksize = 4096};
}

/* above_stat answers a stat that wasi-libc refused with ENOTCAPABLE. */
static int above_stat(const char *path, struct stat *st) {
	switch (__vkposix_above(path)) {
	case VKPOSIX_ABOVE: __vkposix_above_stat(path, st); return 0;
	case VKPOSIX_IN_ABOVE: return fail(ENOENT);
	}
	return fail(ENOTCAPABLE);
}

/* above_access answers an access that wasi-libc refused with ENOTCAPABLE. */
static int above_access(const char *path, int amode) {
	switch (__vkposix_above(path)) {
	case VKPOSIX_ABOVE: return (amode & W_OK) ? fail(EROFS) : 0;
	case VKPOSIX_IN_ABOVE: return fail(ENOENT);
	}
	return fail(ENOTCAPABLE);
}

int __real_stat(const char *, struct stat *);
int __real_lstat(const char *, struct stat *);
int __real___wasilibc_stat(const char *, struct stat *, int);
int __real_access(const char *, int);
int __real___wasilibc_access(const char *, int, int);
int __real_mkdir(const char *, mode_t);
int __real_mkdirat(int, const char *, mode_t);
int __real_open(const char *, int, ...);
int __real_openat(int, const char *, int, ...);

int __wrap_stat(const char *path, struct stat *st) {
	int r = __real_stat(path, st);
	return r < 0 && errno == ENOTCAPABLE ? above_stat(path, st) : r;
}

int __wrap_lstat(const char *path, struct stat *st) {
	int r = __real_lstat(path, st);
	return r < 0 && errno == ENOTCAPABLE ? above_stat(path, st) : r;
}

/* fstatat with AT_FDCWD or an absolute path. */
int __wrap___wasilibc_stat(const char *path, struct stat *st, int flag) {
	int r = __real___wasilibc_stat(path, st, flag);
	return r < 0 && errno == ENOTCAPABLE ? above_stat(path, st) : r;
}

int __wrap_access(const char *path, int amode) {
	int r = __real_access(path, amode);
	return r < 0 && errno == ENOTCAPABLE ? above_access(path, amode) : r;
}

/* faccessat with AT_FDCWD or an absolute path. */
int __wrap___wasilibc_access(const char *path, int amode, int flag) {
	int r = __real___wasilibc_access(path, amode, flag);
	return r < 0 && errno == ENOTCAPABLE ? above_access(path, amode) : r;
}

int __wrap_mkdir(const char *path, mode_t mode) {
	if (__real_mkdir(path, mode) == 0) {
		(void)__vkposix_fchmodat(AT_FDCWD, path, mode & ~__vkposix_umask, 0);
		return 0;
	}
	if (errno != ENOTCAPABLE)
		return -1;
	switch (__vkposix_above(path)) {
	case VKPOSIX_ABOVE: return fail(EEXIST);
	case VKPOSIX_IN_ABOVE: return fail(EROFS);
	}
	return fail(ENOTCAPABLE);
}

int __wrap_mkdirat(int dirfd, const char *path, mode_t mode) {
	if (dirfd == AT_FDCWD || path[0] == '/')
		return __wrap_mkdir(path, mode);
	if (__real_mkdirat(dirfd, path, mode) != 0)
		return -1;
	(void)__vkposix_fchmodat(dirfd, path, mode & ~__vkposix_umask, 0);
	return 0;
}

static int open_at(int dirfd, const char *path, int oflag) {
	return dirfd == AT_FDCWD ? __real_open(path, oflag) : __real_openat(dirfd, path, oflag);
}

/* not_dir returns fd, or, when fd is a directory, closes it and fails with
 * EISDIR. An open that asks to write, or to create, names an existing
 * directory: on Linux that is EISDIR, while preview1 lets the host open
 * the directory to read with the rights that apply to it (the vkernel
 * does), so SQLite, asked to open a directory as a database, would go on
 * to read it ("disk I/O error" instead of "unable to open database file"). */
static int not_dir(int fd) {
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	return fd;
}

/* writes reports whether oflag asks to write. */
static int writes(int oflag) {
	int acc = oflag & O_ACCMODE;
	return acc == O_WRONLY || acc == O_RDWR;
}

/* create opens with O_CREAT and gives a file it created the mode asked
 * for, less the umask (the host created it with its own umask). Whether
 * this open creates the file is known only with O_EXCL: without it, the
 * file is first created exclusively, then, if it exists, opened. A name
 * that neither works for (a dangling link, or a race with another
 * process) is opened as asked, and keeps the host's mode if created. */
static int create(int dirfd, const char *path, int oflag, mode_t mode) {
	mode &= 07777 & ~__vkposix_umask;
	if (oflag & O_EXCL) {
		int fd = open_at(dirfd, path, oflag);
		if (fd >= 0)
			(void)__vkernel_fd_chmod(fd, mode);
		return fd;
	}
	for (int try = 0; try < 3; try++) {
		int fd = open_at(dirfd, path, oflag | O_EXCL);
		if (fd >= 0) {
			(void)__vkernel_fd_chmod(fd, mode);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		fd = open_at(dirfd, path, oflag & ~O_CREAT);
		if (fd >= 0 || errno != ENOENT)
			return not_dir(fd);
	}
	return open_at(dirfd, path, oflag);
}

int __wrap_open(const char *path, int oflag, ...) {
	if (!(oflag & O_CREAT))
		return writes(oflag) ? not_dir(__real_open(path, oflag)) : __real_open(path, oflag);
	va_list ap;
	va_start(ap, oflag);
	mode_t mode = va_arg(ap, mode_t);
	va_end(ap);
	return create(AT_FDCWD, path, oflag, mode);
}

int __wrap_openat(int dirfd, const char *path, int oflag, ...) {
	if (!(oflag & O_CREAT))
		return writes(oflag) ? not_dir(__real_openat(dirfd, path, oflag)) : __real_openat(dirfd, path, oflag);
	va_list ap;
	va_start(ap, oflag);
	mode_t mode = va_arg(ap, mode_t);
	va_end(ap);
	if (path[0] == '/')
		dirfd = AT_FDCWD;
	return create(dirfd, path, oflag, mode);
}
