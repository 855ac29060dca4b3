/* snapshot: a guest with a snapshot start (vkernel/ABI.md, "Snapshots").
 *
 *   _start (main)       prints "start=cold counter=N"
 *   vk_snapshot_init    the initialisation a snapshot captures: reads
 *                       /data/seed into the heap, sets data, bss and a
 *                       stack-pointer-relative buffer; with argv[1] "leak"
 *                       it leaves the file open (a capture must refuse)
 *   vk_snapshot_main    in an instance made from the snapshot: prints
 *                       what the capture left, this process's argv and
 *                       $SNAP_ENV, and exits 0 when the state is whole
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>
#include <wasi/libc-environ.h>

extern void __wasm_call_ctors(void);

static int counter = 1;      /* data */
static char big[1 << 20];    /* bss */
static char *seed;           /* heap, made at the capture */

static char **read_args(int *argc) {
	__wasi_size_t n = 0, size = 0;
	if (__wasi_args_sizes_get(&n, &size) != 0)
		return NULL;
	char **argv = calloc(n + 1, sizeof(char *));
	char *buf = malloc(size ? size : 1);
	if (!argv || !buf || __wasi_args_get((uint8_t **)argv, (uint8_t *)buf) != 0)
		return NULL;
	*argc = (int)n;
	return argv;
}

int main(void) {
	printf("start=cold counter=%d\n", counter);
	return 0;
}

__attribute__((export_name("vk_snapshot_init"))) void vk_snapshot_init(void) {
	__wasm_call_ctors();
	int argc = 0;
	char **argv = read_args(&argc);
	int fd = open("/data/seed", O_RDONLY);
	if (fd < 0) {
		perror("open /data/seed");
		exit(3);
	}
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0) {
		perror("read");
		exit(3);
	}
	buf[n] = 0;
	if (argc < 2 || strcmp(argv[1], "leak") != 0)
		close(fd);
	seed = strdup(buf);
	counter = 41;
	memset(big + 4096, 'x', 100);
	big[1 << 19] = 7;
}

__attribute__((export_name("vk_snapshot_main"))) void vk_snapshot_main(void) {
	__wasilibc_deinitialize_environ();
	__wasilibc_initialize_environ();
	counter++;
	int argc = 0;
	char **argv = read_args(&argc);
	printf("start=snapshot counter=%d seed=%s big=%d,%c pid=%d", counter, seed ? seed : "(none)", big[1 << 19],
	       big[4096 + 99], getpid());
	printf(" argv=");
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? "," : "", argv[i]);
	const char *e = getenv("SNAP_ENV");
	printf(" env=%s\n", e ? e : "(unset)");
	exit(counter == 42 && big[1 << 19] == 7 && big[4096 + 99] == 'x' ? 0 : 4);
}
