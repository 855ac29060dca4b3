// wasi: preview1 conformance probes on raw __wasi_* calls, below wasi-libc's
// path handling, so the host sees exactly the arguments each probe means.
// Run with a writable directory preopened as fd 3 (guest path "/"); each
// probe prints key=value lines, errno values as preview1 numbers.
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

#define DIRFD 3

static __wasi_fd_t open_at(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                           __wasi_rights_t base, __wasi_rights_t inheriting, __wasi_errno_t *err) {
	__wasi_fd_t fd = (__wasi_fd_t)-1;
	*err = __wasi_path_open(dir, 0, path, oflags, base, inheriting, 0, &fd);
	return fd;
}

static void make_file(const char *path, const char *text) {
	__wasi_errno_t err;
	__wasi_fd_t fd = open_at(DIRFD, path, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
	                         __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ, 0, &err);
	if (err != 0) {
		printf("setup_create_%s=%d\n", path, err);
		return;
	}
	__wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
	__wasi_size_t n;
	(void)__wasi_fd_write(fd, &iov, 1, &n);
	(void)__wasi_fd_close(fd);
}

// poll: a clock with stdio and a regular file; all fds are ready at once.
static void poll(void) {
	__wasi_errno_t err;
	make_file("polled", "x");
	__wasi_fd_t file = open_at(DIRFD, "polled", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_POLL_FD_READWRITE, 0, &err);
	__wasi_subscription_t subs[4];
	memset(subs, 0, sizeof subs);
	subs[0].userdata = 10;
	subs[0].u.tag = __WASI_EVENTTYPE_CLOCK;
	subs[0].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
	subs[0].u.u.clock.timeout = 5000000000ull; // 5 s: must not be waited for
	subs[1].userdata = 11;
	subs[1].u.tag = __WASI_EVENTTYPE_FD_READ;
	subs[1].u.u.fd_read.file_descriptor = 0;
	subs[2].userdata = 12;
	subs[2].u.tag = __WASI_EVENTTYPE_FD_WRITE;
	subs[2].u.u.fd_write.file_descriptor = 1;
	subs[3].userdata = 13;
	subs[3].u.tag = __WASI_EVENTTYPE_FD_READ;
	subs[3].u.u.fd_read.file_descriptor = file;
	__wasi_event_t events[4];
	__wasi_size_t n = 0;
	__wasi_timestamp_t t0, t1;
	(void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t0);
	err = __wasi_poll_oneoff(subs, events, 4, &n);
	(void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t1);
	printf("poll_errno=%d\npoll_nevents=%u\n", err, (unsigned)n);
	unsigned long long mask = 0;
	for (__wasi_size_t i = 0; i < n; i++)
		mask |= 1ull << (events[i].userdata - 10);
	printf("poll_fired=%llx\npoll_waited_ms=%llu\n", mask, (unsigned long long)((t1 - t0) / 1000000));
	// The same with only stdio.
	err = __wasi_poll_oneoff(subs, events, 3, &n);
	printf("poll_stdio_errno=%d\npoll_stdio_nevents=%u\n", err, (unsigned)n);
}

// open-dot: path_open(".") with the rights fd_fdstat_get reports.
static void open_dot(void) {
	__wasi_fdstat_t st;
	__wasi_errno_t err = __wasi_fd_fdstat_get(DIRFD, &st);
	printf("fdstat_errno=%d\n", err);
	__wasi_fd_t fd = open_at(DIRFD, ".", 0, st.fs_rights_base, st.fs_rights_inheriting, &err);
	printf("open_dot_errno=%d\n", err);
	if (err != 0)
		return;
	__wasi_fdstat_t dst;
	(void)__wasi_fd_fdstat_get(fd, &dst);
	printf("open_dot_filetype=%d\nopen_dot_write_right=%d\nopen_dot_seek_right=%d\nopen_dot_readdir_right=%d\n",
	       dst.fs_filetype, (dst.fs_rights_base & __WASI_RIGHTS_FD_WRITE) != 0,
	       (dst.fs_rights_base & __WASI_RIGHTS_FD_SEEK) != 0, (dst.fs_rights_base & __WASI_RIGHTS_FD_READDIR) != 0);
	// And with every right there is.
	fd = open_at(DIRFD, ".", 0, ~0ull, ~0ull, &err);
	printf("open_dot_all_errno=%d\n", err);
}

// paths: absolute paths and ".." are relative to the directory fd.
static void paths(void) {
	__wasi_errno_t err;
	(void)__wasi_path_create_directory(DIRFD, "sub");
	make_file("secret", "s");
	make_file("sub/inner", "i");
	__wasi_rights_t r = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_FILESTAT_GET;
	open_at(DIRFD, "/secret", 0, r, r, &err);
	printf("abs_errno=%d\n", err);
	__wasi_fd_t sub = open_at(DIRFD, "sub", __WASI_OFLAGS_DIRECTORY, r, r, &err);
	printf("sub_errno=%d\n", err);
	open_at(sub, "../secret", 0, r, r, &err);
	printf("sub_dotdot_errno=%d\n", err);
	open_at(sub, "x/../../secret", 0, r, r, &err);
	printf("sub_dotdot_nested_errno=%d\n", err);
	open_at(sub, "x/../inner", 0, r, r, &err);
	printf("sub_dotdot_inside_errno=%d\n", err);
	open_at(DIRFD, "sub/../secret", 0, r, r, &err);
	printf("root_dotdot_inside_errno=%d\n", err);
	open_at(DIRFD, "../secret", 0, r, r, &err);
	printf("root_dotdot_errno=%d\n", err);
	__wasi_filestat_t st;
	err = __wasi_path_filestat_get(sub, 0, "../secret", &st);
	printf("sub_stat_dotdot_errno=%d\n", err);
}

// fds: seek on a directory, renumber onto a closed number.
static void fds(void) {
	__wasi_errno_t err;
	__wasi_filesize_t off = 7;
	__wasi_fd_t dir = open_at(DIRFD, ".", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL, 0, &err);
	printf("dir_errno=%d\n", err);
	err = __wasi_fd_seek(dir, 0, __WASI_WHENCE_CUR, &off);
	printf("dir_seek_errno=%d\n", err);
	err = __wasi_fd_tell(dir, &off);
	printf("dir_tell_errno=%d\n", err);
	make_file("f", "abc");
	__wasi_fd_t f = open_at(DIRFD, "f", 0, __WASI_RIGHTS_FD_READ, 0, &err);
	err = __wasi_fd_renumber(f, 60);
	printf("renumber_closed_errno=%d\n", err);
	__wasi_fd_t g = open_at(DIRFD, "f", 0, __WASI_RIGHTS_FD_READ, 0, &err);
	err = __wasi_fd_renumber(f, g);
	printf("renumber_open_errno=%d\n", err);
	err = __wasi_fd_close(f);
	printf("renumber_from_closed=%d\n", err);
}

// rights: calls check the fd's rights; rights can be dropped, not gained.
static void rights(void) {
	__wasi_errno_t err;
	make_file("r", "abc");
	__wasi_fd_t f = open_at(DIRFD, "r", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK, 0, &err);
	printf("open_errno=%d\n", err);
	char buf[4];
	__wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
	__wasi_ciovec_t ciov = {(const uint8_t *)"zz", 2};
	__wasi_size_t n;
	printf("write_errno=%d\n", __wasi_fd_write(f, &ciov, 1, &n));
	printf("truncate_errno=%d\n", __wasi_fd_filestat_set_size(f, 0));
	printf("read_errno=%d\n", __wasi_fd_read(f, &iov, 1, &n));
	__wasi_fdstat_t st;
	(void)__wasi_fd_fdstat_get(f, &st);
	printf("rights=%llx\n", (unsigned long long)st.fs_rights_base);
	printf("drop_errno=%d\n", __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_SEEK, 0));
	printf("read_dropped_errno=%d\n", __wasi_fd_read(f, &iov, 1, &n));
	printf("regain_errno=%d\n", __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_READ, 0));
	// Truncating on open needs PATH_FILESTAT_SET_SIZE on the directory.
	__wasi_fd_t d = open_at(DIRFD, ".", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_PATH_OPEN, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, &err);
	open_at(d, "r", __WASI_OFLAGS_TRUNC, __WASI_RIGHTS_FD_WRITE, 0, &err);
	printf("trunc_without_right_errno=%d\n", err);
	__wasi_filestat_t fst;
	(void)__wasi_path_filestat_get(DIRFD, 0, "r", &fst);
	printf("size_after=%llu\n", (unsigned long long)fst.size);
}

// isatty: the exec's stdio are buffers, not terminals.
static void tty(void) {
	printf("isatty0=%d\nisatty1=%d\nisatty2=%d\n", isatty(0), isatty(1), isatty(2));
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "poll")) poll();
	else if (!strcmp(mode, "open-dot")) open_dot();
	else if (!strcmp(mode, "paths")) paths();
	else if (!strcmp(mode, "fds")) fds();
	else if (!strcmp(mode, "rights")) rights();
	else if (!strcmp(mode, "isatty")) tty();
	else {
		printf("unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
