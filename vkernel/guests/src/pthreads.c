// pthreads: the wasm32-wasi-threads libc (images/wasi-libc-threads) on the
// vkernel. Each check prints "name ok" or "name FAIL detail"; the last line
// is "done". Checks: create/join with a result, a mutex-guarded counter, a
// condition variable hand-off, a thread-local variable, errno per thread,
// malloc/free from every thread at once, a detached thread, a semaphore,
// pthread_once, thread-specific data with its destructor, a timed wait that
// times out, stdio from threads, a spawn beyond the entry's limit, and a
// thread asleep in a host call (poll_oneoff) while the main thread makes
// host calls: were the sleeper to hold the process's lock, the main thread
// would wait for ever and the process never print "done".
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 4
#define ITERS 20000

static int failures;

static void check(const char *name, int ok, const char *detail)
{
    if (ok) {
        printf("%s ok\n", name);
    } else {
        printf("%s FAIL %s\n", name, detail);
        failures++;
    }
}

static void *ret_arg_plus_one(void *arg) { return (void *)((intptr_t)arg + 1); }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *add_counter(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;

static void *cond_peer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (stage != 1)
        pthread_cond_wait(&cv, &mu);
    stage = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static _Thread_local int tls_value = 7;

static void *tls_peer(void *arg)
{
    int seen = tls_value; // the TLS image's value, not main's
    tls_value = (int)(intptr_t)arg;
    errno = 1000 + (int)(intptr_t)arg;
    sched_yield();
    int ok = seen == 7 && tls_value == (int)(intptr_t)arg && errno == 1000 + (int)(intptr_t)arg;
    return (void *)(intptr_t)ok;
}

static void *malloc_peer(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg;
    void *keep[64] = {0};
    for (int i = 0; i < 4000; i++) {
        seed = seed * 1103515245 + 12345;
        int slot = (seed >> 8) % 64;
        free(keep[slot]);
        size_t n = 1 + (seed >> 16) % 3000;
        keep[slot] = malloc(n);
        if (!keep[slot])
            return (void *)0;
        memset(keep[slot], (int)(seed & 0xff), n);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return (void *)1;
}

static sem_t detached_done;
static void *detached_peer(void *arg)
{
    (void)arg;
    sem_post(&detached_done);
    return NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void once_fn(void) { once_runs++; }
static void *once_peer(void *arg)
{
    (void)arg;
    pthread_once(&once, once_fn);
    return NULL;
}

static pthread_key_t key;
static int dtor_runs;
static void key_dtor(void *v)
{
    if (v == (void *)&dtor_runs)
        __atomic_fetch_add(&dtor_runs, 1, __ATOMIC_SEQ_CST);
}
static void *key_peer(void *arg)
{
    (void)arg;
    pthread_setspecific(key, &dtor_runs);
    return (void *)(intptr_t)(pthread_getspecific(key) == &dtor_runs);
}

static void *print_peer(void *arg)
{
    for (int i = 0; i < 50; i++)
        fprintf(stderr, "thread %d line %d\n", (int)(intptr_t)arg, i);
    return NULL;
}

static volatile int sleeper_started;
static void *sleeper(void *arg)
{
    (void)arg;
    __atomic_store_n(&sleeper_started, 1, __ATOMIC_SEQ_CST);
    for (;;)
        sleep(3600); // ended by the process' end
    return NULL;
}

static void *block_peer(void *arg)
{
    sem_wait((sem_t *)arg);
    return NULL;
}

int main(void)
{
    char detail[128];
    pthread_t th[NTHREADS];
    void *res = NULL;

    int r = pthread_create(&th[0], NULL, ret_arg_plus_one, (void *)41);
    int j = r ? r : pthread_join(th[0], &res);
    snprintf(detail, sizeof detail, "create=%d join=%d result=%ld", r, j, (long)(intptr_t)res);
    check("join", r == 0 && j == 0 && (intptr_t)res == 42, detail);

    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, add_counter, NULL);
    add_counter(NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    snprintf(detail, sizeof detail, "counter=%ld want %d", counter, (NTHREADS + 1) * ITERS);
    check("mutex", counter == (long)(NTHREADS + 1) * ITERS, detail);

    pthread_create(&th[0], NULL, cond_peer, NULL);
    pthread_mutex_lock(&mu);
    stage = 1;
    pthread_cond_broadcast(&cv);
    while (stage != 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pthread_join(th[0], NULL);
    check("cond", stage == 2, "stage not 2");

    tls_value = 99;
    errno = 5;
    int all = 1;
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, tls_peer, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], &res);
        all &= (intptr_t)res == 1;
    }
    snprintf(detail, sizeof detail, "threads ok=%d main tls=%d errno=%d", all, tls_value, errno);
    check("tls", all && tls_value == 99, detail);
    check("errno", all && errno == 5, detail);

    all = 1;
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, malloc_peer, (void *)(intptr_t)(i + 1));
    all &= (intptr_t)malloc_peer((void *)99) == 1;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], &res);
        all &= (intptr_t)res == 1;
    }
    check("malloc", all, "a thread's malloc failed");

    sem_init(&detached_done, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    r = pthread_create(&th[0], &attr, detached_peer, NULL);
    int w = r ? r : sem_wait(&detached_done);
    snprintf(detail, sizeof detail, "create=%d sem_wait=%d", r, w);
    check("detached", r == 0 && w == 0, detail);

    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, once_peer, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    snprintf(detail, sizeof detail, "runs=%d", once_runs);
    check("once", once_runs == 1, detail);

    pthread_key_create(&key, key_dtor);
    pthread_create(&th[0], NULL, key_peer, NULL);
    pthread_join(th[0], &res);
    snprintf(detail, sizeof detail, "get=%ld dtor runs=%d", (long)(intptr_t)res, dtor_runs);
    check("specific", (intptr_t)res == 1 && dtor_runs == 1, detail);

    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += 20 * 1000 * 1000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&mu);
    r = pthread_cond_timedwait(&cv, &mu, &at);
    pthread_mutex_unlock(&mu);
    snprintf(detail, sizeof detail, "r=%d", r);
    check("timedwait", r == ETIMEDOUT, detail);

    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, print_peer, (void *)(intptr_t)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    check("stdio", 1, "");

    // The entry allows NTHREADS threads: the one past them is refused.
    sem_t block;
    sem_init(&block, 0, 0);
    int made = 0;
    for (int i = 0; i < NTHREADS; i++)
        made += pthread_create(&th[i], NULL, block_peer, &block) == 0;
    pthread_t extra;
    r = pthread_create(&extra, NULL, block_peer, &block);
    for (int i = 0; i < made; i++)
        sem_post(&block);
    for (int i = 0; i < made; i++)
        pthread_join(th[i], NULL);
    snprintf(detail, sizeof detail, "made=%d extra=%d", made, r);
    check("limit", made == NTHREADS && r == EAGAIN, detail);

    // The last thread the limit allows: never joined, the exit ends it.
    r = pthread_create(&extra, NULL, sleeper, NULL);
    while (r == 0 && !__atomic_load_n(&sleeper_started, __ATOMIC_SEQ_CST))
        sched_yield();
    // Host calls for 300 ms of the monotonic clock: long enough for the
    // sleeper to be inside its sleep (nothing here asserts a duration).
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - t0.tv_sec) * 1000000000LL + (now.tv_nsec - t0.tv_nsec) < 300000000LL);
    snprintf(detail, sizeof detail, "create=%d", r);
    check("sleeper", r == 0, detail);

    printf("done\n");
    return failures ? 1 : 0;
}
