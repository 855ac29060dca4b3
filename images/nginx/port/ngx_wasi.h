
/*
 * nginx on WebAssembly (wasm32-wasi) in compat's vkernel.
 *
 * wasi-libc has no users or groups, no processes and no signals. This
 * header declares what nginx needs of those with the behaviour of a single,
 * unprivileged process; ngx_wasi.c implements it. Sockets are vkposix's
 * (images/lib/vkposix, its net part: libvkposix-net.a, whose headers come
 * first on the include path and give Linux's AF_*, SOCK_*, SO_* values, a
 * sockaddr_un with sun_path, and netdb.h). TCP listeners the runner handed
 * over (VKERNEL_LISTEN_FDS) are matched to "listen" directives by address
 * (ngx_wasi_listener()); nginx binds every other socket itself.
 * Signals come from the vkernel too: poll() is ngx_wasi_poll(), which runs
 * the handlers sigaction() recorded after each wait (the runner's old
 * control listener, NGX_WASI_CONTROL, is gone: see ngx_wasi.c).
 */


#ifndef _NGX_WASI_H_INCLUDED_
#define _NGX_WASI_H_INCLUDED_


#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>


/* Trimmed configuration: configure finds this, but it cannot work here. */
#undef NGX_HAVE_SCHED_YIELD


/* users and groups: there is one user, and it is not root */

struct passwd {
    char   *pw_name;
    char   *pw_passwd;
    uid_t   pw_uid;
    gid_t   pw_gid;
    char   *pw_gecos;
    char   *pw_dir;
    char   *pw_shell;
};

struct group {
    char   *gr_name;
    char   *gr_passwd;
    gid_t   gr_gid;
    char  **gr_mem;
};

struct passwd *getpwnam(const char *name);
struct group *getgrnam(const char *name);
int initgroups(const char *user, gid_t group);
uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
int setuid(uid_t uid);
int setgid(gid_t gid);
int chown(const char *path, uid_t owner, gid_t group);
int fchown(int fd, uid_t owner, gid_t group);
/* vkposix's file part (libvkposix-fs.a): the mask its open and mkdir apply */
mode_t umask(mode_t mask);


/*
 * processes: none can be created; signals are those the vkernel delivers
 * (vkernel.proc_signals), handled when a wait in poll() returns
 */

#define WNOHANG       1
#define WIFEXITED(s)    (((s) & 0x7f) == 0)
#define WEXITSTATUS(s)  (((s) >> 8) & 0xff)
#define WIFSIGNALED(s)  (((s) & 0x7f) != 0)
#define WTERMSIG(s)     ((s) & 0x7f)
#define WCOREDUMP(s)    ((s) & 0x80)

pid_t fork(void);
pid_t waitpid(pid_t pid, int *status, int options);
pid_t getppid(void);
pid_t setsid(void);
int execve(const char *path, char *const argv[], char *const envp[]);
int kill(pid_t pid, int sig);

#ifndef SA_SIGINFO
#define SA_SIGINFO    4
#endif

typedef struct {
    int     si_signo;
    int     si_code;
    pid_t   si_pid;
} siginfo_t;

struct sigaction {
    void  (*sa_handler)(int);
    void  (*sa_sigaction)(int, siginfo_t *, void *);
    sigset_t    sa_mask;
    int         sa_flags;
};

int sigaction(int sig, const struct sigaction *act, struct sigaction *old);
int sigemptyset(sigset_t *set);
int sigaddset(sigset_t *set, int sig);
int sigprocmask(int how, const sigset_t *set, sigset_t *old);
int sigsuspend(const sigset_t *set);

#ifndef SIG_BLOCK
#define SIG_BLOCK     0
#define SIG_UNBLOCK   1
#define SIG_SETMASK   2
#endif


/*
 * sockets: vkposix's (socket, bind, listen, accept, connect, sendto,
 * recvfrom, sendmsg, recvmsg, getsockopt, setsockopt, getaddrinfo...)
 */

/*
 * The listener the vkernel handed over for a TCP "listen" address, or -1
 * with errno set (EADDRNOTAVAIL: none has that address).
 */
int ngx_wasi_listener(struct sockaddr *sa, socklen_t socklen);


/* resource limits: fixed answers (1024 files), changes are ignored */

#ifndef RLIMIT_NOFILE
#define RLIMIT_CORE    4
#define RLIMIT_NOFILE  7
#define RLIM_INFINITY  (~0UL)
struct rlimit {
    rlim_t  rlim_cur;
    rlim_t  rlim_max;
};
int getrlimit(int resource, struct rlimit *rlim);
int setrlimit(int resource, const struct rlimit *rlim);
#endif


/* constants wasi-libc leaves out, with Linux's values */

#ifndef EHOSTDOWN
#define EHOSTDOWN      112     /* never returned: WASI has no such errno */
#endif

#ifndef F_SETLK
#define F_SETLK        6
#define F_SETLKW       7
#define F_WRLCK        1
#define F_UNLCK        2
#endif
#ifndef F_SETOWN
#define F_SETOWN       8
#endif
#ifndef FIOASYNC
#define FIOASYNC       0x5452
#endif


/* interval timers ("timer_resolution") and priorities: not available */

#define ITIMER_REAL    0
#define PRIO_PROCESS   0

struct itimerval {
    struct timeval  it_interval;
    struct timeval  it_value;
};

int setitimer(int which, const struct itimerval *value,
    struct itimerval *old);
int setpriority(int which, id_t who, int prio);

#define getpagesize()  4096


/* files */

int dup2(int oldfd, int newfd);
/* vkposix's file part: the host file's mode */
int chmod(const char *path, mode_t mode);
char *realpath(const char *path, char *resolved);


/*
 * poll() that runs the handlers of the signals the vkernel delivered while
 * it waited, as a native libc does on return from the system call
 */
int ngx_wasi_poll(struct pollfd *fds, nfds_t nfds, int timeout);
#define poll  ngx_wasi_poll


/* the pid nginx writes to its pid file: the runner's host pid if it says */
pid_t ngx_wasi_getpid(void);


#endif /* _NGX_WASI_H_INCLUDED_ */
