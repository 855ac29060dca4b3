/* Force-included (-include redis_wasi.h) into every Redis source compiled
 * for wasm32-wasi, to run in the vkernel. It declares what wasi-libc leaves
 * out and Redis calls, implemented in redis_wasi.c. Where behaviour must
 * change (listeners, the event loop) the patches in ../patches/ call the
 * compat_* functions declared here. Sockets, processes, pipes and signals
 * are vkposix's (images/lib/vkposix, over the vkernel's calls:
 * vkernel/ABI.md), whose include directory comes first. */
#ifndef REDIS_WASI_H
#define REDIS_WASI_H
#ifdef __wasi__

#include <errno.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <netinet/in.h>

#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT EPROTONOSUPPORT
#endif
#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT EAFNOSUPPORT
#endif

/* ---- sockets are vkposix's (socket, bind, connect, accept with the
 * peer's address, getsockopt, setsockopt, getaddrinfo); the listeners are
 * the runner's, handed over. */

/* compat_listener returns the listening socket the vkernel handed over
 * (VKERNEL_LISTEN_FDS) for addr (NULL or "*" or "::*" for any address of
 * the family) and port, or -1 with errno EADDRNOTAVAIL. */
int compat_listener(const char *addr, int port, int af);
/* compat_release_listener gives back a listener compat_listener handed out,
 * keeping it open for a later compat_listener (the port is the runner's:
 * a new socket could not take it); any other fd is closed. */
void compat_release_listener(int fd);
/* compat_unix_listener returns the unix-domain listening socket the
 * vkernel handed over for path (VKERNEL_LISTEN_FDS lists it as fd=path),
 * or -1 with errno EADDRNOTAVAIL. */
int compat_unix_listener(const char *path);
/* ---- processes: pipes, waitpid, kill, getpid, signals and the interval
 * timer come from vkposix (images/lib/vkposix: <unistd.h>, <sys/wait.h>,
 * <signal.h>, <sys/time.h>), forks from vkposix_fork (patch 0003). */
#include <vkposix.h>
/* fork() cannot return twice in wasm: it fails with ENOSYS (daemonize). */
pid_t fork(void);
int dup2(int from, int to);
pid_t setsid(void);
mode_t umask(mode_t mask);
int chmod(const char *path, mode_t mode);
int fchmod(int fd, mode_t mode);
/* Resource limits: a fixed descriptor budget, nothing can be raised. */
typedef unsigned long long rlim_t;
struct rlimit { rlim_t rlim_cur, rlim_max; };
#define RLIM_INFINITY (~0ULL)
#define RLIMIT_CORE 4
#define RLIMIT_NOFILE 7
int setrlimit(int res, const struct rlimit *rl);
int getrlimit(int res, struct rlimit *rl);

/* Files. */
int mkstemp(char *tmpl);
int flock(int fd, int op);
char *get_current_dir_name(void);
int execve(const char *path, char *const argv[], char *const envp[]);
void tzset(void);

#endif /* __wasi__ */
#endif
