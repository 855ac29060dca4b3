/* vkposix: POSIX processes, pipes and signals for guests of the vkernel.
 *
 * The library implements pipe, posix_spawn, waitpid, kill, sigaction,
 * alarm and friends over the vkernel host calls declared below (the
 * contract is vkernel/ABI.md, "Processes"). Programs include the usual
 * headers (<signal.h>, <unistd.h>, <sys/wait.h>, <spawn.h>, <sys/time.h>):
 * the include directory of this library wraps or supplies them. This
 * header adds what POSIX has no name for: the raw host calls, taking
 * pending signals, and fork at a known call site. See README.md for how to
 * build and link. */
#ifndef VKPOSIX_H
#define VKPOSIX_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The vkernel host calls. Each returns a WASI preview1 errno (0 success),
 * not -1/errno; the POSIX functions of this library translate. */
#define VKPOSIX_IMPORT(name) __attribute__((import_module("vkernel"), import_name(#name)))

VKPOSIX_IMPORT(fd_pipe)
int32_t __vkernel_fd_pipe(uint32_t *fds /* [2]: read end, write end */);
VKPOSIX_IMPORT(fd_dup)
int32_t __vkernel_fd_dup(uint32_t fd, uint32_t min, uint32_t *newfd);
VKPOSIX_IMPORT(fd_dup2)
int32_t __vkernel_fd_dup2(uint32_t fd, uint32_t to);
VKPOSIX_IMPORT(proc_spawn)
int32_t __vkernel_proc_spawn(const char *path, uint32_t path_len, const char *argv, uint32_t argv_len,
                             const char *env, uint32_t env_len, const char *cwd, uint32_t cwd_len,
                             const uint32_t *fds /* nfds pairs {child_fd, parent_fd} */, uint32_t nfds,
                             uint32_t *pid);
VKPOSIX_IMPORT(proc_initial_cwd)
int32_t __vkernel_proc_initial_cwd(char *buf, uint32_t buf_len, uint32_t *len);
VKPOSIX_IMPORT(proc_wait)
int32_t __vkernel_proc_wait(int32_t pid, uint32_t options, uint32_t *rpid, uint32_t *status);
VKPOSIX_IMPORT(proc_kill)
int32_t __vkernel_proc_kill(int32_t pid, int32_t sig);
VKPOSIX_IMPORT(proc_sigaction)
int32_t __vkernel_proc_sigaction(int32_t sig, uint32_t action);
VKPOSIX_IMPORT(proc_signals)
int32_t __vkernel_proc_signals(uint64_t *set);
VKPOSIX_IMPORT(proc_id)
int32_t __vkernel_proc_id(uint32_t *pid, uint32_t *ppid);
VKPOSIX_IMPORT(proc_setitimer)
int32_t __vkernel_proc_setitimer(int64_t value_ns, int64_t interval_ns, uint64_t *old /* [2] */);
VKPOSIX_IMPORT(proc_fork)
int32_t __vkernel_proc_fork(uint32_t fn, uint32_t arg, uint32_t *pid);

/* The socket calls (vkernel/ABI.md, "Sockets"). Addresses are vkaddrs:
 * u16 family, u16 port, u32 scope id, 16 address bytes (inet: the first
 * 4); unix: u16 family, u16 path length, the path. Constants are Linux's. */
#define VKPOSIX_VKADDR_MAX 112
VKPOSIX_IMPORT(sock_open)
int32_t __vkernel_sock_open(uint32_t domain, uint32_t type, uint32_t protocol, uint32_t fdflags, uint32_t *fd);
VKPOSIX_IMPORT(sock_pair)
int32_t __vkernel_sock_pair(uint32_t domain, uint32_t type, uint32_t fdflags, uint32_t *fds /* [2] */);
VKPOSIX_IMPORT(sock_bind)
int32_t __vkernel_sock_bind(uint32_t fd, const void *addr, uint32_t addr_len);
VKPOSIX_IMPORT(sock_listen)
int32_t __vkernel_sock_listen(uint32_t fd, int32_t backlog);
VKPOSIX_IMPORT(sock_connect_to)
int32_t __vkernel_sock_connect_to(uint32_t fd, const void *addr, uint32_t addr_len);
VKPOSIX_IMPORT(sock_getsockname)
int32_t __vkernel_sock_getsockname(uint32_t fd, void *buf, uint32_t buf_len, uint32_t *len);
VKPOSIX_IMPORT(sock_getpeername)
int32_t __vkernel_sock_getpeername(uint32_t fd, void *buf, uint32_t buf_len, uint32_t *len);
VKPOSIX_IMPORT(sock_sendto)
int32_t __vkernel_sock_sendto(uint32_t fd, const void *iovs, uint32_t iovs_len, uint32_t flags, const void *addr,
                              uint32_t addr_len, uint32_t *n);
VKPOSIX_IMPORT(sock_recvfrom)
int32_t __vkernel_sock_recvfrom(uint32_t fd, const void *iovs, uint32_t iovs_len, uint32_t flags, void *addr_buf,
                                uint32_t addr_buf_len, uint32_t *n, uint32_t *addr_len, uint32_t *oflags);
VKPOSIX_IMPORT(sock_getsockopt)
int32_t __vkernel_sock_getsockopt(uint32_t fd, int32_t level, int32_t name, void *buf, uint32_t buf_len, uint32_t *len);
VKPOSIX_IMPORT(sock_setsockopt)
int32_t __vkernel_sock_setsockopt(uint32_t fd, int32_t level, int32_t name, const void *buf, uint32_t buf_len);

/* VKPOSIX_UMASK_ENV carries a spawned child's file mode creation mask:
 * proc_spawn has no argument for it, so posix_spawn adds
 * VKPOSIX_UMASK=<octal> to the child's environment when the caller's
 * umask is not the default 022, and the child's start-up applies it and
 * removes the variable before main runs. A program that calls
 * __vkernel_proc_spawn itself (CPython's _posixsubprocess) adds it the same
 * way to give its child a umask. */
#define VKPOSIX_UMASK_ENV "VKPOSIX_UMASK"

/* proc_sigaction's actions. */
#define VKPOSIX_SIG_DEFAULT 0
#define VKPOSIX_SIG_IGNORE 1
#define VKPOSIX_SIG_CATCH 2

/* proc_wait's options. */
#define VKPOSIX_WNOHANG 1

/* vkposix_take_signals takes the signals the host holds pending for the
 * process and runs their handlers (those not blocked by sigprocmask; a
 * blocked one stays pending until it is unblocked). It returns how many
 * handlers ran. The library calls it whenever a host call answers EINTR;
 * a program computing for long without blocking calls may call it to run
 * handlers sooner (it is one cheap host call). */
int vkposix_take_signals(void);

/* vkposix_fork starts a child process whose memory, fd table and signal
 * dispositions are copies of the caller's at the call, and which runs
 * exit(fn(arg)) there; the caller gets the child's pid, or -1 with errno
 * (EAGAIN past the process limit, ENOSYS when the kernel cannot fork,
 * EACCES when the entry may not start processes). Pointers into the
 * caller's memory, its stack included, stay valid in the child: they point
 * into the copy. This is fork() at a known call site: the child's work
 * starts in fn instead of returning from a call. As with a native child
 * that ends with exit, stdio buffers copied from the parent are flushed
 * again; an fn that must not do that ends with _exit. */
pid_t vkposix_fork(int (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif

#endif
