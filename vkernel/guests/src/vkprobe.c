/* vkprobe: exercises the vkernel host module. One mode per run; prints
 * "key=value" lines.
 *
 *   vkprobe peer FD              accept, print the peer's address and port
 *   vkprobe local FD             print a listener's own address and port
 *   vkprobe connect IP PORT      connect, send "ping", print the reply
 *   vkprobe jmp N                N rounds of setjmp / deep longjmp
 *   vkprobe mmap-exec            ask for PROT_READ|PROT_EXEC memory
 *   vkprobe mprotect-wx          ask to make memory writable and executable
 *   vkprobe mmap-rw              ask for PROT_READ|PROT_WRITE memory (allowed)
 *   vkprobe spawn PATH ARG...    spawn PATH with the same stdio, wait, print its status
 *   vkprobe write-exec SRC DST   copy SRC to DST with one byte changed, exec DST
 *   vkprobe signals              wait in poll_oneoff (30 s slices), print each
 *                                return and the signals taken; exit on SIGTERM
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wasi/api.h>

#define VK(name) __attribute__((import_module("vkernel"), import_name(#name)))
VK(sock_peer_addr) int vk_sock_peer_addr(int fd, char *buf, unsigned len, unsigned *outlen, unsigned *port);
VK(sock_local_addr) int vk_sock_local_addr(int fd, char *buf, unsigned len, unsigned *outlen, unsigned *port);
VK(sock_connect) int vk_sock_connect(const char *addr, unsigned len, unsigned port, unsigned fdflags, int *fd);
VK(setjmp) int vk_setjmp(void *env);
VK(longjmp) void vk_longjmp(void *env, int val);
VK(mem_map) int vk_mem_map(unsigned len, unsigned prot, unsigned flags);
VK(mem_protect) int vk_mem_protect(unsigned addr, unsigned len, unsigned prot);
VK(proc_signals) int vk_proc_signals(unsigned long long *set);
VK(proc_spawn) int vk_proc_spawn(const char *path, unsigned len, const char *argv, unsigned argvlen,
                                 const char *env, unsigned envlen, const char *cwd, unsigned cwdlen,
                                 const unsigned *fds, unsigned nfds, unsigned *pid);
VK(proc_wait) int vk_proc_wait(int pid, unsigned options, unsigned *rpid, unsigned *status);

static int jmpbuf[4];

static int __attribute__((noinline)) dive(int n) {
	if (n == 0)
		vk_longjmp(jmpbuf, 42);
	char pad[64];
	memset(pad, n, sizeof pad);
	return dive(n - 1) + pad[3];
}

static int spawn(const char *path, int argc, char **argv) {
	char packed[1024];
	unsigned off = 0;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;
		memcpy(packed + off, argv[i], l);
		off += l;
	}
	static const unsigned stdio[] = {0, 0, 1, 1, 2, 2};
	unsigned pid = 0, rpid = 0, status = 0;
	fflush(stdout);
	int rc = vk_proc_spawn(path, strlen(path), packed, off, "", 0, "", 0, stdio, 3, &pid);
	if (rc == 0)
		vk_proc_wait(pid, 0, &rpid, &status);
	printf("spawn_errno=%d status=%u\n", rc, status >> 8);
	return rc;
}

/* wait_signals: a guest event loop's part in signal delivery. */
static int wait_signals(void) {
	printf("waiting\n");
	fflush(stdout);
	for (int round = 0; round < 10; round++) {
		__wasi_subscription_t sub;
		memset(&sub, 0, sizeof sub);
		sub.u.tag = __WASI_EVENTTYPE_CLOCK;
		sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
		sub.u.u.clock.timeout = 30ull * 1000000000ull;
		__wasi_event_t ev;
		__wasi_size_t n = 0;
		int err = __wasi_poll_oneoff(&sub, &ev, 1, &n);
		unsigned long long set = 0;
		int serr = vk_proc_signals(&set);
		printf("poll_errno=%d nevents=%u signals_errno=%d set=%#llx\n", err, (unsigned)n, serr, set);
		fflush(stdout);
		if (set & (1ull << 15))
			return 0;
	}
	return 1;
}

static int accept_one(int l) {
	int c = accept(l, NULL, NULL);
	if (c < 0) {
		printf("accept=-1 errno=%d\n", errno);
		exit(3);
	}
	return c;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	const char *mode = argv[1];
	char addr[64];
	unsigned len = 0, port = 0;
	if (strcmp(mode, "peer") == 0) {
		int c = accept_one(atoi(argv[2]));
		int rc = vk_sock_peer_addr(c, addr, sizeof addr, &len, &port);
		printf("errno=%d peer=%.*s:%u\n", rc, (int)len, addr, port);
	} else if (strcmp(mode, "local") == 0) {
		int rc = vk_sock_local_addr(atoi(argv[2]), addr, sizeof addr, &len, &port);
		printf("errno=%d local=%.*s:%u\n", rc, (int)len, addr, port);
	} else if (strcmp(mode, "connect") == 0) {
		int fd = -1;
		int rc = vk_sock_connect(argv[2], strlen(argv[2]), atoi(argv[3]), 0, &fd);
		printf("connect_errno=%d\n", rc);
		if (rc == 0) {
			send(fd, "ping", 4, 0);
			char buf[16] = {0};
			ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
			printf("reply=%.*s\n", (int)(n > 0 ? n : 0), buf);
			close(fd);
		}
	} else if (strcmp(mode, "jmp") == 0) {
		int rounds = atoi(argv[2]);
		volatile int ok = 0;
		for (volatile int i = 0; i < rounds; i++) {
			int r = vk_setjmp(jmpbuf);
			if (r == 0) {
				dive(20);
				printf("not reached\n");
				return 1;
			}
			if (r == 42)
				ok++;
		}
		printf("jumps=%d\n", ok);
	} else if (strcmp(mode, "mmap-exec") == 0) {
		printf("mmap_exec_errno=%d\n", vk_mem_map(4096, 1 | 4, 0));
	} else if (strcmp(mode, "mprotect-wx") == 0) {
		printf("mprotect_wx_errno=%d\n", vk_mem_protect(65536, 4096, 1 | 2 | 4));
	} else if (strcmp(mode, "mmap-rw") == 0) {
		printf("mmap_rw_errno=%d\n", vk_mem_map(4096, 1 | 2, 0));
	} else if (strcmp(mode, "signals") == 0) {
		return wait_signals();
	} else if (strcmp(mode, "spawn") == 0) {
		spawn(argv[2], argc - 2, argv + 2);
	} else if (strcmp(mode, "write-exec") == 0) {
		FILE *in = fopen(argv[2], "rb");
		if (!in) {
			printf("copy_errno=%d (open %s)\n", errno, argv[2]);
			return 1;
		}
		FILE *out = fopen(argv[3], "wb");
		if (!out) {
			printf("copy_errno=%d (create %s)\n", errno, argv[3]);
			return 1;
		}
		int ch;
		long n = 0;
		while ((ch = fgetc(in)) != EOF) {
			if (n == 100)
				ch ^= 0x01; /* one flipped bit: a new, unlisted program */
			fputc(ch, out);
			n++;
		}
		fclose(in);
		fclose(out);
		spawn(argv[3], argc - 3, argv + 3);
	} else {
		return 2;
	}
	return 0;
}
