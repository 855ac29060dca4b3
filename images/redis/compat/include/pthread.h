/* A single-threaded stand-in for pthread.h: wasm32-wasi has no threads.
 * Mutexes and condition variables are no-ops (there is nobody to race
 * with); pthread_create fails with ENOSYS, so code that needs a thread must
 * be patched to do the work inline (bio.c, networking.c io threads). */
#ifndef COMPAT_PTHREAD_H
#define COMPAT_PTHREAD_H

#include <errno.h>
#include <stddef.h>
#include <time.h>

#include <sys/types.h> /* wasi-libc already has the pthread_* types */

#define PTHREAD_MUTEX_INITIALIZER {{{0}}}
#define PTHREAD_COND_INITIALIZER {{{0}}}
#define PTHREAD_CANCEL_ENABLE 0
#define PTHREAD_CANCEL_ASYNCHRONOUS 0
#define PTHREAD_CANCELED ((void *)-1)

static inline pthread_t pthread_self(void) { return (pthread_t)1; }
static inline int pthread_equal(pthread_t a, pthread_t b) { return a == b; }
static inline int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
    (void)t; (void)a; (void)f; (void)arg; return ENOSYS;
}
static inline int pthread_join(pthread_t t, void **r) { (void)t; (void)r; return ESRCH; }
static inline int pthread_cancel(pthread_t t) { (void)t; return ESRCH; }
static inline int pthread_detach(pthread_t t) { (void)t; return 0; }
static inline int pthread_setcancelstate(int s, int *o) { (void)s; if (o) *o = 0; return 0; }
static inline int pthread_setcanceltype(int s, int *o) { (void)s; if (o) *o = 0; return 0; }
static inline int pthread_attr_init(pthread_attr_t *a) { (void)a; return 0; }
static inline int pthread_attr_destroy(pthread_attr_t *a) { (void)a; return 0; }
static inline int pthread_attr_getstacksize(const pthread_attr_t *a, size_t *s) { (void)a; *s = 8u << 20; return 0; }
static inline int pthread_attr_setstacksize(pthread_attr_t *a, size_t s) { (void)a; (void)s; return 0; }
static inline int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a) { (void)m; (void)a; return 0; }
static inline int pthread_mutex_destroy(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_mutex_lock(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_mutex_trylock(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_mutex_unlock(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a) { (void)c; (void)a; return 0; }
static inline int pthread_cond_destroy(pthread_cond_t *c) { (void)c; return 0; }
static inline int pthread_cond_signal(pthread_cond_t *c) { (void)c; return 0; }
static inline int pthread_cond_broadcast(pthread_cond_t *c) { (void)c; return 0; }
static inline int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { (void)c; (void)m; return 0; }
static inline int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t) {
    (void)c; (void)m; (void)t; return ETIMEDOUT;
}
static inline void pthread_testcancel(void) {}

#endif
