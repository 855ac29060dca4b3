/* vkposix_fork: fork at a known call site (vkernel.proc_fork). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

pid_t vkposix_fork(int (*fn)(void *), void *arg) {
	uint32_t pid = 0;
	int e = __vkernel_proc_fork((uint32_t)(uintptr_t)fn, (uint32_t)(uintptr_t)arg, &pid);
	if (e) {
		errno = e;
		return -1;
	}
	return (pid_t)pid;
}

/* The forked child's start: the host calls it instead of _start, in a copy
 * of the parent's memory; fn is an index into the function table, as a
 * function pointer is on wasm32. */
__attribute__((export_name("vkernel_fork_child"))) void vkernel_fork_child(uint32_t fn, uint32_t arg) {
	__vkposix_forked();
	int (*f)(void *) = (int (*)(void *))(uintptr_t)fn;
	exit(f((void *)(uintptr_t)arg));
}
