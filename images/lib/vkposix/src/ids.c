/* The guest's identity (vkernel proc_cred: the host's uid and gid) and
 * chown as an unprivileged user may use it: to give a file it owns to
 * itself and its own group, which changes nothing; anything else is EPERM.
 * Weak, in a file of their own: a port's own definition of any of them
 * (nginx's geteuid, which must not say root) wins without a clash, and the
 * others still come from here. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkposix_fs.h"

#define WEAK __attribute__((weak))

static uint32_t ids[2];
static int have_ids;

static void cred(void) {
	if (!have_ids && __vkernel_proc_cred(ids) == 0)
		have_ids = 1;
}

WEAK uid_t getuid(void) { return cred(), ids[0]; }
WEAK uid_t geteuid(void) { return cred(), ids[0]; }
WEAK gid_t getgid(void) { return cred(), ids[1]; }
WEAK gid_t getegid(void) { return cred(), ids[1]; }

WEAK int getgroups(int n, gid_t list[]) {
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	if (n == 0)
		return 1;
	list[0] = getgid();
	return 1;
}

static int owner_check(int r, const struct stat *st, uid_t uid, gid_t gid) {
	if (r != 0)
		return r;
	cred();
	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	if (st->st_uid != ids[0] || (uid != (uid_t)-1 && uid != ids[0]) || (gid != (gid_t)-1 && gid != ids[1])) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

WEAK int chown(const char *path, uid_t uid, gid_t gid) {
	struct stat st;
	return owner_check(stat(path, &st), &st, uid, gid);
}

WEAK int lchown(const char *path, uid_t uid, gid_t gid) {
	struct stat st;
	return owner_check(lstat(path, &st), &st, uid, gid);
}

WEAK int fchown(int fd, uid_t uid, gid_t gid) {
	struct stat st;
	return owner_check(fstat(fd, &st), &st, uid, gid);
}

WEAK int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flag) {
	struct stat st;
	return owner_check(fstatat(dirfd, path, &st, flag), &st, uid, gid);
}
