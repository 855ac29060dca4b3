/* vkposix internals shared by the library's files. */
#ifndef VKPOSIX_INTERNAL_H
#define VKPOSIX_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <wasi/api.h>

#include "vkposix.h"

/* VKPOSIX_WEAK marks the library's socket and name functions: a port that
 * still defines its own (socket() over handed-over listeners, a resolver)
 * keeps them, with no duplicate symbol, even when the linker takes the
 * library's object for another function in it. */
#define VKPOSIX_WEAK __attribute__((weak))

/* The bit of signal sig in a sigset_t. */
#define VKPOSIX_BIT(sig) (1ull << ((sig) - 1))

/* __vkposix_interrupted is what a blocking call does when the host answers
 * EINTR: it takes the pending signals and runs their handlers. It returns
 * 1 when the call should be made again: no handler ran (the signal was
 * blocked, or no longer caught), or every handler that ran has SA_RESTART
 * and restartable says Linux restarts this call. */
int __vkposix_interrupted(int restartable);

/* __vkposix_pending_default applies the default action of a signal that
 * was pending while blocked with a default disposition. */
void __vkposix_default_action(int sig);

/* The wasi-libc calls the library wraps (-Wl,--wrap=...): __real_ is
 * wasi-libc's own. */
__wasi_errno_t __real___wasi_poll_oneoff(const __wasi_subscription_t *, __wasi_event_t *, __wasi_size_t, __wasi_size_t *);

/* VKPOSIX_SIGMASK_ENV carries a spawned child's signal mask (spawn.c),
 * applied and removed at the child's start (wrap.c). */
#define VKPOSIX_SIGMASK_ENV "VKPOSIX_SIGMASK"

/* __vkposix_forked resets a forked child's pending signals. */
void __vkposix_forked(void);

#endif
