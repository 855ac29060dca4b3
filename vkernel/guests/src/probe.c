/* probe: a preview1-only guest that exercises one host behaviour per mode
 * and prints what it saw, one "key=value" line, so the same binary can run
 * on plain wazero and on the vkernel and be compared.
 *
 *   probe clock                 realtime clock in ns
 *   probe poll-idle FD          poll a listener nobody connects to, 300 ms
 *   probe poll-write FD         accept, then poll the connection for POLLOUT
 *   probe abs-sleep             clock_nanosleep TIMER_ABSTIME 50 ms ahead
 *   probe readv-split FD        accept, wait, readv into 4+4 bytes (non-blocking)
 *   probe close-eof FD          accept, send "hi", close, then stay alive 1.5 s
 *   probe prestat FD            fd_prestat_get(FD)
 *   probe echo FD N             accept N connections in turn, echo each until EOF
 *   probe fs                    file system checks under the "/" mount
 *   probe ro DIR                read-only mount checks under DIR
 *   probe args ...              print argv and one env var
 *   probe exit N                exit with status N
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <wasi/api.h>

static long long now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int accept_one(int l) {
	int c;
	do {
		c = accept(l, NULL, NULL);
	} while (c < 0 && errno == EAGAIN);
	if (c < 0) {
		printf("accept=-1 errno=%d\n", errno);
		exit(3);
	}
	return c;
}

static void sleep_ms(int ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void fs_checks(void) {
	int fd = open("/work/a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 && errno == ENOENT) {
		mkdir("/work", 0755);
		fd = open("/work/a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	}
	printf("create=%d\n", fd >= 0);
	printf("write=%zd\n", write(fd, "hello world", 11));
	close(fd);
	struct stat st;
	printf("stat=%d size=%lld\n", stat("/work/a.txt", &st), (long long)st.st_size);
	printf("rename=%d\n", rename("/work/a.txt", "/work/b.txt"));
	DIR *d = opendir("/work");
	int seen = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, "b.txt") == 0)
			seen = 1;
	if (d)
		closedir(d);
	printf("readdir_b=%d\n", seen);
	char buf[64] = {0};
	fd = open("/work/b.txt", O_RDONLY);
	printf("read=%zd data=%s\n", read(fd, buf, sizeof buf - 1), buf);
	close(fd);
	/* Escapes: ".." above the root, and a symlink to a host path. */
	fd = open("/../../../../etc/hostname-escape-probe", O_RDONLY);
	printf("dotdot_errno=%d\n", fd < 0 ? errno : 0);
	symlink("/etc/passwd", "/work/link");
	fd = open("/work/link", O_RDONLY);
	printf("symlink_escape_errno=%d\n", fd < 0 ? errno : 0);
	printf("unlink=%d\n", unlink("/work/b.txt"));
	errno = 0;
	printf("unlink_missing=%d errno=%d\n", unlink("/work/b.txt"), errno);
	unlink("/work/link");
	printf("rmdir=%d\n", rmdir("/work"));
}

static void ro_checks(const char *dir) {
	char path[256];
	snprintf(path, sizeof path, "%s/missing-file", dir);
	errno = 0;
	printf("ro_unlink_missing=%d errno=%d\n", unlink(path), errno);
	errno = 0;
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	printf("ro_create=%d errno=%d\n", fd, errno);
	snprintf(path, sizeof path, "%s/present.txt", dir);
	errno = 0;
	printf("ro_unlink_present=%d errno=%d\n", unlink(path), errno);
	fd = open(path, O_RDONLY);
	char buf[32] = {0};
	printf("ro_read=%zd\n", read(fd, buf, sizeof buf));
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: probe MODE [ARGS]\n");
		return 2;
	}
	const char *mode = argv[1];
	int fd = argc > 2 ? atoi(argv[2]) : -1;
	if (strcmp(mode, "clock") == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("realtime_ns=%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	} else if (strcmp(mode, "poll-idle") == 0) {
		struct pollfd p = {fd, POLLIN, 0};
		long long t0 = now_ms();
		int n = poll(&p, 1, 300);
		printf("ready=%d revents=%d elapsed_ms=%lld\n", n, p.revents, now_ms() - t0);
	} else if (strcmp(mode, "poll-write") == 0) {
		int c = accept_one(fd);
		struct pollfd p = {c, POLLOUT, 0};
		int n = poll(&p, 1, 1000);
		printf("ready=%d errno=%d pollout=%d\n", n, n < 0 ? errno : 0, (p.revents & POLLOUT) != 0);
	} else if (strcmp(mode, "abs-sleep") == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		long long t0 = now_ms();
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		printf("rc=%d elapsed_ms=%lld\n", rc, now_ms() - t0);
	} else if (strcmp(mode, "readv-split") == 0) {
		int c = accept_one(fd);
		fcntl(c, F_SETFL, O_NONBLOCK);
		sleep_ms(300);
		char a[5] = {0}, b[5] = {0};
		struct iovec iov[2] = {{a, 4}, {b, 4}};
		ssize_t n = readv(c, iov, 2);
		printf("n=%zd errno=%d data=%s\n", n, n < 0 ? errno : 0, a);
	} else if (strcmp(mode, "close-eof") == 0) {
		int c = accept_one(fd);
		send(c, "hi", 2, 0);
		close(c);
		sleep_ms(1500);
		printf("closed=1\n");
	} else if (strcmp(mode, "prestat") == 0) {
		__wasi_prestat_t ps;
		printf("prestat_errno=%d\n", __wasi_fd_prestat_get(fd, &ps));
	} else if (strcmp(mode, "echo") == 0) {
		int conns = argc > 3 ? atoi(argv[3]) : 1;
		for (int i = 0; i < conns; i++) {
			int c = accept_one(fd);
			char buf[16384]; /* the default wasm stack is 64 KiB */
			ssize_t n;
			while ((n = recv(c, buf, sizeof buf, 0)) > 0) {
				for (ssize_t off = 0; off < n;) {
					ssize_t w = send(c, buf + off, n - off, 0);
					if (w < 0) {
						printf("send=-1 errno=%d\n", errno);
						return 4;
					}
					off += w;
				}
			}
			if (n < 0)
				printf("recv=-1 errno=%d\n", errno);
			close(c);
		}
		printf("echoed=%d\n", conns);
	} else if (strcmp(mode, "fs") == 0) {
		fs_checks();
	} else if (strcmp(mode, "ro") == 0) {
		ro_checks(argv[2]);
	} else if (strcmp(mode, "args") == 0) {
		for (int i = 0; i < argc; i++)
			printf("arg%d=%s\n", i, argv[i]);
		const char *v = getenv("PROBE_VAR");
		printf("env=%s\n", v ? v : "");
	} else if (strcmp(mode, "exit") == 0) {
		return fd;
	} else {
		fprintf(stderr, "probe: unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
