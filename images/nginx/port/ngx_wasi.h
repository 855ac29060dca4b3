
/*
 * nginx on WebAssembly (wasm32-wasi) in compat's vkernel.
 *
 * wasi-libc has no users or groups, no processes, no signals and no socket
 * creation. This header declares what nginx needs of those with the
 * behaviour of a single, unprivileged process; ngx_wasi.c implements it.
 * Listening sockets are handed over by the vkernel (VKERNEL_LISTEN_FDS) and
 * matched to "listen" directives by address: see ngx_wasi_listener().
 * Signals come from the vkernel too: poll() is ngx_wasi_poll(), which runs
 * the handlers sigaction() recorded after each wait (the runner's old
 * control listener, NGX_WASI_CONTROL, is gone: see ngx_wasi.c).
 */


#ifndef _NGX_WASI_H_INCLUDED_
#define _NGX_WASI_H_INCLUDED_


#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>


/*
 * Trimmed configuration: configure finds these, but they cannot work here.
 * UNIX-domain sockets: wasi-libc's sockaddr_un has no sun_path.
 */
#undef NGX_HAVE_UNIX_DOMAIN
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


/* sockets: only handed-over listeners and the connections they accept */

int socket(int domain, int type, int protocol);
int socketpair(int domain, int type, int protocol, int sv[2]);
int bind(int fd, const struct sockaddr *addr, socklen_t len);
int listen(int fd, int backlog);
int connect(int fd, const struct sockaddr *addr, socklen_t len);
int setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t sendto(int fd, const void *buf, size_t n, int flags,
    const struct sockaddr *addr, socklen_t len);
ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
    struct sockaddr *addr, socklen_t *len);

/* accept()ed sockets get their peer's address from the vkernel */
int ngx_wasi_accept(int fd, struct sockaddr *addr, socklen_t *len);
int ngx_wasi_accept4(int fd, struct sockaddr *addr, socklen_t *len,
    int flags);
#define accept   ngx_wasi_accept
#define accept4  ngx_wasi_accept4

/* getsockopt() answers for the options nginx reads off listeners */
int ngx_wasi_getsockopt(int fd, int level, int name, void *val,
    socklen_t *len);
#define getsockopt  ngx_wasi_getsockopt

/*
 * A socket connecting to sa (the vkernel's sock_connect, non-blocking);
 * connect() on it then reports 0 or EINPROGRESS, as a POSIX connect would.
 */
int ngx_wasi_socket_connect(struct sockaddr *sa, socklen_t socklen);

/*
 * The listener the vkernel handed over for a "listen" address, or -1 with
 * errno set (EADDRNOTAVAIL: none has that address).
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


/* names: no resolver; hosts are IP literals or "localhost" */

struct hostent {
    char   *h_name;
    char  **h_aliases;
    int     h_addrtype;
    int     h_length;
    char  **h_addr_list;
};
#define h_addr  h_addr_list[0]

struct hostent *gethostbyname(const char *name);

/* constants wasi-libc leaves out, with Linux's values */

#ifndef SO_REUSEADDR
#define SO_REUSEADDR   2
#endif
#ifndef SO_ERROR
#define SO_ERROR       4
#endif
#ifndef SO_SNDBUF
#define SO_SNDBUF      7
#endif
#ifndef SO_RCVBUF
#define SO_RCVBUF      8
#endif
#ifndef SO_KEEPALIVE
#define SO_KEEPALIVE   9
#endif
#ifndef SO_LINGER
#define SO_LINGER      13
#endif
#ifndef SO_SNDLOWAT
#define SO_SNDLOWAT    19
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN      112     /* never returned: WASI has no such errno */
#endif

/* wasi-libc maps these to a constant it does not define */
#undef MSG_CTRUNC
#define MSG_CTRUNC     0x0008
#undef MSG_TRUNC
#define MSG_TRUNC      0x0020

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


/* ancillary data: only the master/worker channel uses it, and it never runs */

#define SCM_RIGHTS     1

struct cmsghdr {
    socklen_t  cmsg_len;
    int        cmsg_level;
    int        cmsg_type;
};

#define CMSG_ALIGN(len)  (((len) + sizeof(size_t) - 1)                         \
                          & (size_t) ~(sizeof(size_t) - 1))
#define CMSG_SPACE(len)  (CMSG_ALIGN(len) + CMSG_ALIGN(sizeof(struct cmsghdr)))
#define CMSG_LEN(len)    (CMSG_ALIGN(sizeof(struct cmsghdr)) + (len))
#define CMSG_DATA(c)     ((unsigned char *) (c)                                \
                          + CMSG_ALIGN(sizeof(struct cmsghdr)))
#define CMSG_FIRSTHDR(m) ((size_t) (m)->msg_controllen                         \
                          >= sizeof(struct cmsghdr)                            \
                          ? (struct cmsghdr *) (m)->msg_control                \
                          : (struct cmsghdr *) 0)
#define CMSG_NXTHDR(m, c)  ((struct cmsghdr *) 0)


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
