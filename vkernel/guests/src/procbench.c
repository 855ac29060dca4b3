/* procbench: process start-up latency, built both for the vkernel (with
 * vkposix) and natively, so that the two are measured the same way. Each
 * sample is the time from the parent's call (posix_spawn, or fork) to the
 * child's first instruction, which reads CLOCK_MONOTONIC (the host's, in
 * the vkernel too) and writes it to a pipe; prints "sample=NS" lines.
 *
 *   procbench spawn N CHILD     CHILD is a firstinsn program (firstinsn.wat, firstinsn.c)
 *   procbench fork N MB         with MB MiB of heap written before the forks
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __wasm__
#include <vkposix.h>
#endif

extern char **environ;

static int64_t now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int out[2];

/* child ends with _exit: the stdio buffers it has a copy of are the
 * parent's to write. */
static int child(void *arg) {
	int64_t t = now();
	(void)arg;
	_exit(write(out[1], &t, sizeof t) == sizeof t ? 0 : 1);
}

static int64_t read_stamp(void) {
	int64_t t = 0;
	size_t got = 0;
	while (got < sizeof t) {
		ssize_t n = read(out[0], (char *)&t + got, sizeof t - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return t;
}

int main(int argc, char **argv) {
	if (argc < 4)
		return 2;
	int n = atoi(argv[2]);
	if (pipe(out) < 0)
		return 3;
	if (!strcmp(argv[1], "spawn")) {
		char *av[] = {argv[3], NULL};
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
		for (int i = 0; i < n; i++) {
			pid_t pid;
			int64_t t0 = now();
			if (posix_spawn(&pid, argv[3], &fa, NULL, av, environ) != 0)
				return 4;
			int64_t t1 = read_stamp();
			waitpid(pid, NULL, 0);
			printf("sample=%lld\n", (long long)(t1 - t0));
		}
	} else if (!strcmp(argv[1], "fork")) {
		size_t len = (size_t)atoi(argv[3]) << 20;
		char *heap = malloc(len);
		if (!heap)
			return 5;
		memset(heap, 1, len);
		for (int i = 0; i < n; i++) {
			int64_t t0 = now();
#ifdef __wasm__
			pid_t pid = vkposix_fork(child, NULL);
#else
			pid_t pid = fork();
			if (pid == 0)
				child(NULL);
#endif
			if (pid < 0)
				return 6;
			int64_t t1 = read_stamp();
			waitpid(pid, NULL, 0);
			printf("sample=%lld\n", (long long)(t1 - t0));
		}
		printf("heap_check=%d\n", heap[len - 1]);
	} else {
		return 2;
	}
	return 0;
}
