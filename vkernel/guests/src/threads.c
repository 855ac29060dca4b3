// threads.c: a C guest for wasm32-wasi-threads (built with the sysroot
// of images/lib/wasi-libc-threads and linked with a shared memory), for
// the vkernel's thread tests. That libc (bookworm's wasi-libc, built
// THREAD_MODEL=posix) has no pthread_create, so the guest starts its
// threads itself: wasi.thread-spawn, and a wasi_thread_start that gives
// the new instance its own stack and thread-local storage before any C
// runs. The mutex and the condition are futexes (memory.atomic.wait32 and
// notify). Only the main thread uses stdio.
//
// threads sum N K   N threads add 1, K times each, to an atomic counter
//                   and to a counter under the mutex; main waits on the
//                   condition until all are done, prints "sum=N*K
//                   locked=N*K errno=ok" (errno is per thread)
// threads exit      a thread calls exit(3); main waits for ever
// threads trap      a thread traps; main waits for ever
// threads limit     main starts threads that wait for ever until a start
//                   fails, prints "started=N err=E" and exits 0
// threads spin      threads compute without host calls, main waits
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasi"), import_name("thread-spawn"))) int32_t thread_spawn(void *arg);

// Made by wasm-ld for a module with thread-local storage.
extern void __wasm_init_tls(void *block);

// The start argument: stack first (wasi_thread_start reads it first).
struct start {
	void *stack_top;
	void *tls;
	int mode;
	int index;
};

// wasi_thread_start(tid, arg): sets this instance's __stack_pointer to the
// thread's stack, then calls thread_entry. Assembly: C code would use the
// stack pointer before it could be set.
__asm__(".globaltype __stack_pointer, i32\n"
	".functype thread_entry (i32, i32) -> ()\n"
	".section .text.wasi_thread_start,\"\",@\n"
	".globl wasi_thread_start\n"
	".type wasi_thread_start,@function\n"
	"wasi_thread_start:\n"
	".functype wasi_thread_start (i32, i32) -> ()\n"
	"  local.get 1\n"
	"  i32.load 0\n"
	"  global.set __stack_pointer\n"
	"  local.get 0\n"
	"  local.get 1\n"
	"  call thread_entry\n"
	"  end_function\n");

enum { SUM, EXIT, TRAP, LIMIT, SPIN };

static atomic_int counter, done, gate;
static atomic_int mutex; // 0 free, 1 held
static int locked;       // guarded by mutex
static int iters;
static _Thread_local int mine = 7; // each thread's own copy, from .tdata

static void lock(void) {
	int free = 0;
	while (!atomic_compare_exchange_strong(&mutex, &free, 1)) {
		__builtin_wasm_memory_atomic_wait32((int *)&mutex, 1, -1);
		free = 0;
	}
}

static void unlock(void) {
	atomic_store(&mutex, 0);
	__builtin_wasm_memory_atomic_notify((int *)&mutex, 1);
}

// wait_while waits until *w is no longer v (a condition variable's wait,
// with the futex word as the condition's sequence).
static void wait_while(atomic_int *w, int v) {
	while (atomic_load(w) == v)
		__builtin_wasm_memory_atomic_wait32((int *)w, v, -1);
}

void thread_entry(int tid, struct start *s);

void thread_entry(int tid, struct start *s) {
	(void)tid;
	__wasm_init_tls(s->tls);
	switch (s->mode) {
	case EXIT:
		exit(3);
	case TRAP:
		__builtin_trap();
	case LIMIT:
		for (;;)
			wait_while(&gate, 0);
	case SPIN:
		for (volatile int x = 0;; x++)
			;
	}
	mine += s->index; // this thread's copy only
	errno = 1000 + s->index;
	for (int i = 0; i < iters; i++) {
		atomic_fetch_add(&counter, 1);
		lock();
		locked++;
		unlock();
	}
	if (mine != 7 + s->index || errno != 1000 + s->index)
		__builtin_trap();
	atomic_fetch_add(&done, 1);
	__builtin_wasm_memory_atomic_notify((int *)&done, -1);
}

static int start_thread(int mode, int index) {
	enum { STACK = 64 << 10 };
	struct start *s = malloc(sizeof *s);
	char *stack = aligned_alloc(16, STACK);
	void *tls = aligned_alloc(__builtin_wasm_tls_align(), __builtin_wasm_tls_size());
	if (!s || !stack || !tls)
		return -ENOMEM;
	s->stack_top = stack + STACK;
	s->tls = tls;
	s->mode = mode;
	s->index = index;
	return thread_spawn(s);
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	int mode = !strcmp(argv[1], "sum") ? SUM : !strcmp(argv[1], "exit") ? EXIT
		: !strcmp(argv[1], "trap") ? TRAP : !strcmp(argv[1], "limit") ? LIMIT
		: !strcmp(argv[1], "spin") ? SPIN : -1;
	if (mode < 0)
		return 2;
	if (mode == LIMIT) {
		int n = 0, tid;
		while ((tid = start_thread(LIMIT, n)) > 0)
			n++;
		printf("started=%d err=%d\n", n, -tid);
		return 0;
	}
	int n = argc > 2 ? atoi(argv[2]) : 2;
	iters = argc > 3 ? atoi(argv[3]) : 1;
	errno = 0;
	for (int i = 0; i < n; i++) {
		int tid = start_thread(mode, i);
		if (tid <= 0) {
			printf("thread-spawn: %d\n", tid);
			return 12;
		}
	}
	for (int d; (d = atomic_load(&done)) < n;)
		wait_while(&done, d);
	printf("sum=%d locked=%d errno=%s mine=%d\n", atomic_load(&counter), locked, errno == 0 ? "ok" : "shared", mine);
	return 0;
}
