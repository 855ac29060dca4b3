/* fsmode: file modes, the directories above the mounts and absolute links,
 * through the vkposix library (images/lib/vkposix) over the vkernel. One
 * mode per run; prints "key=value" lines, a failed call as "key=-1 errno=N"
 * on a line of its own (N is wasi-libc's errno: EEXIST 20, EACCES 2,
 * ENOENT 44, EROFS 69, EPERM 63, ENOTCAPABLE 76).
 *
 *   fsmode modes DIR        create, chmod, stat, access, umask, mkdir mode, chown in DIR (writable)
 *   fsmode ro DIR           chmod and access W_OK in DIR (a read-only mount)
 *   fsmode above DIR        mkdir every directory of DIR/cache/a as nginx does; stat and
 *                           access the directories above DIR, from / and relative to DIR
 *   fsmode links DIR        absolute links in DIR to DIR's own names and outside it
 *   fsmode realpath DIR     realpath through relative and absolute links, "..", a loop, missing names
 *   fsmode fdwalk DIR       what CPython's os.fwalk and shutil.rmtree do with fds: openat a
 *                           directory, fdopendir a dup of it, readdir, rewinddir, fstatat and
 *                           unlinkat relative to it
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* say prints key=r, and errno when r is -1. */
static void say(const char *key, long r) {
	if (r == -1)
		printf("%s=-1 errno=%d\n", key, errno);
	else
		printf("%s=%ld\n", key, r);
}

static void mode_of(const char *key, const char *path, int follow) {
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);
	if (r < 0) {
		say(key, r);
		return;
	}
	printf("%s=%o\n", key, (unsigned)st.st_mode);
}

static char *join(const char *dir, const char *name) {
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	return p;
}

static void modes(const char *dir) {
	char *f = join(dir, "f"), *g = join(dir, "g"), *d = join(dir, "d"), *l = join(dir, "l");
	int fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0600);
	say("create", fd < 0 ? -1 : 0);
	mode_of("created_mode", f, 1);
	struct stat st;
	fstat(fd, &st);
	printf("fstat_mode=%o uid_match=%d\n", (unsigned)st.st_mode, st.st_uid == getuid() && st.st_gid == getgid());
	say("fchmod", fchmod(fd, 0640));
	mode_of("fchmod_mode", f, 1);
	say("x_before", access(f, X_OK));
	say("chmod", chmod(f, 0755));
	mode_of("chmod_mode", f, 1);
	say("x_after", access(f, X_OK));
	say("rw", access(f, R_OK | W_OK));
	say("chmod0", chmod(f, 0));
	say("r_none", access(f, R_OK));
	say("f_none", access(f, F_OK));
	say("fchmodat", fchmodat(AT_FDCWD, f, 0644, 0));
	mode_of("fchmodat_mode", f, 1);
	close(fd);

	/* The umask applies to the mode open and mkdir are given. */
	printf("umask_old=%o\n", (unsigned)umask(027));
	fd = open(g, O_CREAT | O_WRONLY | O_TRUNC, 0666);
	say("open_creat", fd < 0 ? -1 : 0);
	mode_of("open_creat_mode", g, 1);
	close(fd);
	say("chmod_g", chmod(g, 0600));
	fd = open(g, O_CREAT | O_WRONLY, 0666); /* exists: its mode stays */
	close(fd);
	mode_of("reopen_mode", g, 1);
	say("mkdir", mkdir(d, 0777));
	mode_of("mkdir_mode", d, 1);
	/* A directory opened to write or create is EISDIR (21 on Linux, 31
	 * in preview1's numbering); to read, it opens. */
	fd = open(d, O_CREAT | O_RDWR, 0666);
	say("creat_dir", fd < 0 ? -1 : (close(fd), 0));
	fd = open(d, O_RDWR);
	say("rdwr_dir", fd < 0 ? -1 : (close(fd), 0));
	fd = openat(AT_FDCWD, d, O_WRONLY);
	say("wronly_dir", fd < 0 ? -1 : (close(fd), 0));
	fd = open(d, O_RDONLY);
	say("rdonly_dir", fd < 0 ? -1 : (close(fd), 0));
	umask(022);

	say("symlink", symlink("f", l));
	mode_of("lstat_link", l, 0);
	say("lchmod", lchmod(l, 0600)); /* a link's own mode: ENOTSUP (58) */

	printf("uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
	say("chown_self", chown(f, getuid(), getgid()));
	say("chown_nochange", chown(f, -1, -1));
	say("chown_other", chown(f, getuid() + 1, -1));
	say("chown_missing", chown(join(dir, "missing"), getuid(), -1));
}

static void ro(const char *dir) {
	char *f = join(dir, "present");
	say("ro_chmod", chmod(f, 0600));
	say("ro_w", access(f, W_OK));
	say("ro_r", access(f, R_OK));
	mode_of("ro_mode", f, 1);
}

static void above(const char *dir) {
	/* nginx's ngx_create_full_path: mkdir each directory of the path in
	 * turn, EEXIST meaning there already. */
	char *full = join(dir, "cache/a");
	int failed = 0;
	for (char *p = full + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(full, 0700) < 0 && errno != EEXIST) {
			printf("mkdir_failed=%s errno=%d\n", full, errno);
			failed = 1;
		}
		*p = c;
		if (!c)
			break;
	}
	say("full_path", failed ? -1 : 0);
	mode_of("created", full, 1);

	char parent[512];
	snprintf(parent, sizeof parent, "%s", dir);
	*strrchr(parent, '/') = 0;
	mode_of("parent_mode", parent, 1);
	mode_of("root_mode", "/", 1);
	say("mkdir_parent", mkdir(parent, 0755));
	say("mkdir_root", mkdir("/", 0755));
	say("parent_rx", access(parent, R_OK | X_OK));
	say("parent_w", access(parent, W_OK));
	char *missing = join(parent, "vkposix-no-such-name");
	mode_of("missing", missing, 1);
	say("mkdir_missing", mkdir(missing, 0755));
	say("chmod_parent", chmod(parent, 0777));
	struct stat st;
	say("fstatat_parent", fstatat(AT_FDCWD, parent, &st, 0));
	/* Relative to a working directory in the mount. */
	say("chdir", chdir(dir));
	mode_of("dotdot_mode", "..", 1);
	say("mkdir_dotdot", mkdir("..", 0755));
	/* Out of the mount by "..", and back into it. */
	char back[512];
	snprintf(back, sizeof back, "../%s/cache/", strrchr(dir, '/') + 1);
	mode_of("dotdot_back", back, 1);
	int fd = open(back, O_RDONLY | O_DIRECTORY);
	say("open_back", fd < 0 ? -1 : 0);
	snprintf(back, sizeof back, "%s/../%s/cache/a", dir, strrchr(dir, '/') + 1);
	mode_of("abs_back", back, 1);
	snprintf(back, sizeof back, "../%s/cache", strrchr(dir, '/') + 1);
	say("chdir_back", chdir(back));
	char cwd[512];
	printf("cwd_clean=%d\n", getcwd(cwd, sizeof cwd) && !strcmp(cwd, join(dir, "cache")));
	/* Still refused: a path beside the mounts' ancestors. */
	mode_of("outside", "/vkposix/no/such/dir", 1);
}

/* rp prints key=the path realpath gives, relative to dir ("" for dir
 * itself), or key=-1 errno=N. */
static void rp(const char *dir, const char *key, const char *path) {
	char *r = realpath(path, NULL);
	if (!r) {
		say(key, -1);
		return;
	}
	size_t n = strlen(dir);
	printf("%s=%s\n", key, strncmp(r, dir, n) == 0 ? r + n : r);
	free(r);
}

static void real(const char *dir) {
	char *d = join(dir, "d"), *f = join(dir, "d/f");
	mkdir(d, 0755);
	close(open(f, O_CREAT | O_WRONLY, 0644));
	symlink("d/f", join(dir, "rel"));   /* relative to its directory */
	symlink(f, join(dir, "abs"));       /* absolute */
	symlink("../d", join(dir, "d/up")); /* climbs back into d */
	symlink("loop", join(dir, "loop"));
	rp(dir, "rel", join(dir, "rel"));
	rp(dir, "abs", join(dir, "abs"));
	rp(dir, "dots", join(dir, "d/./up/up/../d/f"));
	rp(dir, "loop", join(dir, "loop"));
	rp(dir, "missing", join(dir, "d/nope"));
	rp(dir, "notdir", join(dir, "d/f/x"));
	chdir(d);
	rp(dir, "relative", "up/f");
	char buf[PATH_MAX];
	printf("caller_buf=%d\n", realpath(".", buf) == buf && strcmp(buf, d) == 0);
}

static void links(const char *dir) {
	char *b = join(dir, "b"), *a = join(dir, "a"), *e = join(dir, "e");
	FILE *fp = fopen(b, "w");
	fputs("B", fp);
	fclose(fp);
	say("symlink", symlink(b, a)); /* the text names the guest path */
	char buf[256] = {0};
	int fd = open(a, O_RDONLY);
	say("open_link", fd < 0 ? -1 : 0);
	if (fd >= 0) {
		read(fd, buf, sizeof buf - 1);
		printf("through_link=%s\n", buf);
		close(fd);
	}
	memset(buf, 0, sizeof buf);
	say("readlink_len", readlink(a, buf, sizeof buf - 1));
	printf("readlink_same=%d\n", strcmp(buf, b) == 0);
	say("symlink_escape", symlink("/etc/passwd", e));
	say("open_escape", open(e, O_RDONLY));
}

/* names lists the entries of dirp but "." and "..", in order, as a,b,c. */
static void names(const char *key, DIR *dirp) {
	char list[256] = "";
	struct dirent *de;
	int n = 0;
	char seen[8][32];
	while ((de = readdir(dirp)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || n == 8)
			continue;
		snprintf(seen[n++], sizeof seen[0], "%s", de->d_name);
	}
	qsort(seen, n, sizeof seen[0], (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < n; i++) {
		strcat(list, i ? "," : "");
		strcat(list, seen[i]);
	}
	printf("%s=%s\n", key, list);
}

static void fdwalk(const char *dir) {
	char *top = join(dir, "walk");
	mkdir(top, 0755);
	char *sub = join(top, "sub");
	mkdir(sub, 0755);
	close(open(join(top, "f"), O_WRONLY | O_CREAT, 0644));
	close(open(join(sub, "g"), O_WRONLY | O_CREAT, 0644));
	int topfd = open(top, O_RDONLY | O_DIRECTORY);
	say("open_top", topfd >= 0 ? 0 : -1);
	/* os.scandir(fd) dups the fd and hands the copy to fdopendir. */
	int copy = dup(topfd);
	DIR *d = fdopendir(copy);
	say("fdopendir", d ? 0 : -1);
	if (!d)
		return;
	names("top", d);
	rewinddir(d);
	names("again", d);
	closedir(d);
	struct stat st, st2;
	say("fstat_top_after_closedir", fstat(topfd, &st));
	say("fstatat_sub", fstatat(topfd, "sub", &st, AT_SYMLINK_NOFOLLOW));
	printf("sub_is_dir=%d\n", S_ISDIR(st.st_mode));
	int subfd = openat(topfd, "sub", O_RDONLY);
	say("openat_sub", subfd >= 0 ? 0 : -1);
	/* os.fwalk checks that what it opened is what it stat'ed. */
	fstat(subfd, &st2);
	printf("same_file=%d\n", st.st_dev == st2.st_dev && st.st_ino == st2.st_ino);
	d = fdopendir(dup(subfd));
	names("sub", d);
	closedir(d);
	say("fdopendir_file", fdopendir(openat(topfd, "f", O_RDONLY)) ? 0 : -1);
	say("unlinkat_g", unlinkat(subfd, "g", 0));
	say("unlinkat_sub", unlinkat(topfd, "sub", AT_REMOVEDIR));
	say("unlinkat_f", unlinkat(topfd, "f", 0));
	close(subfd);
	d = fdopendir(dup(topfd));
	names("empty", d);
	closedir(d);
	close(topfd);
	say("rmdir_top", rmdir(top));
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *mode = argv[1], *dir = argv[2];
	if (!strcmp(mode, "modes"))
		modes(dir);
	else if (!strcmp(mode, "ro"))
		ro(dir);
	else if (!strcmp(mode, "above"))
		above(dir);
	else if (!strcmp(mode, "links"))
		links(dir);
	else if (!strcmp(mode, "realpath"))
		real(dir);
	else if (!strcmp(mode, "fdwalk"))
		fdwalk(dir);
	else
		return 2;
	return 0;
}
