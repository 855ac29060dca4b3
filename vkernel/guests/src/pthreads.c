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
//
// "pthreads blocking SELF [CHECK]" checks instead the host calls that block while
// another thread makes host calls, each a thread blocked in one while the
// main thread makes the call that ends the wait (with the process's lock
// held over the wait, that call would never return: the test's time limit
// ends it): a read of an empty pipe and the write to it (pipe_read), a
// sock_accept and the connect (accept), poll() on a pipe and the write
// (poll), proc_wait for a child that ends when the main thread closes its
// stdin pipe (waitpid; SELF is this program's guest path, run as "pthreads
// child"), and a close of the fd a thread is blocked reading, which must
// return (close_blocked); all of them, or only CHECK.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
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


#define VK(name) __attribute__((import_module("vkernel"), import_name(#name)))
VK(fd_pipe) int vk_fd_pipe(unsigned *fds);
VK(sock_open) int vk_sock_open(unsigned domain, unsigned type, unsigned proto, unsigned fdflags, unsigned *fd);
VK(sock_bind) int vk_sock_bind(unsigned fd, const void *addr, unsigned len);
VK(sock_listen) int vk_sock_listen(unsigned fd, unsigned backlog);
VK(sock_getsockname) int vk_sock_getsockname(unsigned fd, void *buf, unsigned len, unsigned *outlen);
VK(sock_connect_to) int vk_sock_connect_to(unsigned fd, const void *addr, unsigned len);
VK(proc_spawn) int vk_proc_spawn(const char *path, unsigned len, const char *argv, unsigned argvlen,
                                 const char *env, unsigned envlen, const char *cwd, unsigned cwdlen,
                                 const unsigned *fds, unsigned nfds, unsigned *pid);
VK(proc_wait) int vk_proc_wait(int pid, unsigned options, unsigned *rpid, unsigned *status);

// A blocker runs one blocking call in a thread: it says it is about to
// block (ready), blocks, and records what the call returned.
struct blocker {
    int fd;
    int pid;
    volatile int ready;
    long ret;
    int err;
    unsigned status;
    char buf[16];
};

static void about_to_block(struct blocker *b) { __atomic_store_n(&b->ready, 1, __ATOMIC_SEQ_CST); }

// settle lets the thread get into its call: it says it is about to
// block, then 50 ms pass (in a sleep, which releases the lock today).
static void settle(struct blocker *b)
{
    while (!__atomic_load_n(&b->ready, __ATOMIC_SEQ_CST))
        sched_yield();
    usleep(50 * 1000);
}

static void *read_blocker(void *arg)
{
    struct blocker *b = arg;
    about_to_block(b);
    b->ret = read(b->fd, b->buf, sizeof b->buf);
    b->err = errno;
    return NULL;
}

static void *poll_blocker(void *arg)
{
    struct blocker *b = arg;
    struct pollfd pfd = {.fd = b->fd, .events = POLLIN};
    about_to_block(b);
    b->ret = poll(&pfd, 1, -1);
    b->err = errno;
    b->status = pfd.revents;
    return NULL;
}

static void *accept_blocker(void *arg)
{
    struct blocker *b = arg;
    about_to_block(b);
    int c = accept(b->fd, NULL, NULL);
    b->err = errno;
    if (c < 0) {
        b->ret = -1;
        return NULL;
    }
    b->ret = read(c, b->buf, sizeof b->buf);
    close(c);
    return NULL;
}

static void *wait_blocker(void *arg)
{
    struct blocker *b = arg;
    unsigned rpid = 0;
    about_to_block(b);
    b->err = vk_proc_wait(b->pid, 0, &rpid, &b->status);
    b->ret = rpid;
    return NULL;
}

// inet_addr4 writes a vkaddr for 127.0.0.1:port.
static void inet_addr4(unsigned char a[24], unsigned port)
{
    memset(a, 0, 24);
    a[0] = 2; // AF_INET
    a[2] = port & 0xff;
    a[3] = port >> 8;
    a[8] = 127;
    a[11] = 1;
}

// want reports whether the check name is to run: all of them, or only.
static int want(const char *only, const char *name) { return !only || strcmp(only, name) == 0; }

static int blocking(const char *self, const char *only)
{
    char detail[160];
    pthread_t th;
    unsigned p[2];

    if (want(only, "pipe_read")) {
        struct blocker b = {0};
        int e = vk_fd_pipe(p);
        b.fd = (int)p[0];
        pthread_create(&th, NULL, read_blocker, &b);
        settle(&b);
        long w = write((int)p[1], "hello", 5);
        pthread_join(th, NULL);
        snprintf(detail, sizeof detail, "pipe=%d write=%ld read=%ld errno=%d", e, w, b.ret, b.err);
        check("pipe_read", e == 0 && w == 5 && b.ret == 5 && memcmp(b.buf, "hello", 5) == 0, detail);
        close((int)p[0]);
        close((int)p[1]);
    }

    if (want(only, "accept")) {
        struct blocker b = {0};
        unsigned l = 0, s = 0, alen = 0;
        unsigned char addr[24], got[112];
        inet_addr4(addr, 0);
        int e = vk_sock_open(2, 1, 0, 0, &l);
        if (!e)
            e = vk_sock_bind(l, addr, sizeof addr);
        if (!e)
            e = vk_sock_listen(l, 8);
        if (!e)
            e = vk_sock_getsockname(l, got, sizeof got, &alen);
        unsigned port = got[2] | got[3] << 8;
        long w = -1;
        int ce = -1;
        if (!e) {
            b.fd = (int)l;
            pthread_create(&th, NULL, accept_blocker, &b);
            settle(&b);
            inet_addr4(addr, port);
            ce = vk_sock_open(2, 1, 0, 0, &s);
            if (!ce)
                ce = vk_sock_connect_to(s, addr, sizeof addr);
            if (!ce)
                w = write((int)s, "ping", 4);
            pthread_join(th, NULL);
            close((int)s);
            close((int)l);
        }
        snprintf(detail, sizeof detail, "listen=%d port=%u connect=%d write=%ld read=%ld errno=%d", e, port, ce, w,
                 b.ret, b.err);
        check("accept", e == 0 && ce == 0 && w == 4 && b.ret == 4 && memcmp(b.buf, "ping", 4) == 0, detail);
    }

    if (want(only, "poll")) {
        struct blocker b = {0};
        int e = vk_fd_pipe(p);
        b.fd = (int)p[0];
        pthread_create(&th, NULL, poll_blocker, &b);
        settle(&b);
        long w = write((int)p[1], "z", 1);
        pthread_join(th, NULL);
        snprintf(detail, sizeof detail, "pipe=%d write=%ld poll=%ld errno=%d revents=%#x", e, w, b.ret, b.err,
                 b.status);
        check("poll", e == 0 && w == 1 && b.ret == 1 && (b.status & POLLIN), detail);
        close((int)p[0]);
        close((int)p[1]);
    }

    if (want(only, "waitpid")) {
        struct blocker b = {0};
        int e = vk_fd_pipe(p);
        unsigned pid = 0;
        char argv[] = "pthreads\0child";
        const unsigned fds[] = {0, p[0]};
        if (!e)
            e = vk_proc_spawn(self, strlen(self), argv, sizeof argv, "", 0, "", 0, fds, 1, &pid);
        close((int)p[0]);
        long w = -1;
        int ce = -1;
        if (!e) {
            b.pid = (int)pid;
            pthread_create(&th, NULL, wait_blocker, &b);
            settle(&b);
            // Host calls while the other thread waits for the child, the
            // last of which lets the child end.
            w = write((int)p[1], "bye", 3);
            ce = close((int)p[1]);
            pthread_join(th, NULL);
        } else {
            close((int)p[1]);
        }
        snprintf(detail, sizeof detail, "spawn=%d write=%ld close=%d wait=%d pid=%ld/%u status=%#x", e, w, ce, b.err,
                 b.ret, pid, b.status);
        check("waitpid", e == 0 && w == 3 && ce == 0 && b.err == 0 && b.ret == (long)pid && b.status == 7 << 8,
              detail);
    }

    if (want(only, "close_blocked")) {
        struct blocker b = {0};
        int e = vk_fd_pipe(p);
        b.fd = (int)p[0];
        pthread_create(&th, NULL, read_blocker, &b);
        settle(&b);
        int ce = close((int)p[0]);
        pthread_join(th, NULL);
        // The fds stay usable: a new pipe carries bytes.
        unsigned q[2];
        int e2 = vk_fd_pipe(q);
        char buf[4] = {0};
        long w = write((int)q[1], "ok", 2), r = read((int)q[0], buf, sizeof buf);
        snprintf(detail, sizeof detail, "pipe=%d close=%d read=%ld errno=%d; after: pipe=%d write=%ld read=%ld", e, ce,
                 b.ret, b.err, e2, w, r);
        check("close_blocked", e == 0 && ce == 0 && (b.ret == 0 || (b.ret < 0 && b.err == EBADF)) && e2 == 0 &&
                                   w == 2 && r == 2,
              detail);
        close((int)p[1]);
        close((int)q[0]);
        close((int)q[1]);
    }

    printf("done\n");
    return failures ? 1 : 0;
}

// child: read stdin to its end, then exit 7.
static int child(void)
{
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return 7;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "blocking") == 0)
        return blocking(argv[2], argc > 3 ? argv[3] : NULL);
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child();
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
