
/*
 * nginx on WebAssembly (wasm32-wasi) in compat's vkernel: the POSIX calls
 * wasi-libc lacks, with the behaviour of one unprivileged process that owns
 * the listeners its runner handed over. See ngx_wasi.h.
 *
 * Signals come from the vkernel (vkernel.proc_signals), as they do for
 * redis-server.wasm: sigaction() records nginx's handlers, and poll(),
 * after each wait, runs the handlers of the signals delivered during it,
 * as a native libc does on return from the system call. This replaced an
 * older protocol in which the runner wrote signal letters to a control
 * listener (NGX_WASI_CONTROL) that nginx polled: it took a socket and a
 * port of its own, an event handler nginx does not have, and a second
 * signal path beside the vkernel's; now nginx's own ngx_signal_handler
 * decides what each signal does, with its own log lines.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


/* the vkernel host module (vkernel/ABI.md) */

#define NGX_WASI_IMPORT(name)                                                 \
    __attribute__((import_module("vkernel"), import_name(name)))

NGX_WASI_IMPORT("sock_peer_addr")
uint32_t ngx_wasi_sock_peer_addr(int32_t fd, char *buf, uint32_t buf_len,
    uint32_t *len, uint32_t *port);

NGX_WASI_IMPORT("sock_local_addr")
uint32_t ngx_wasi_sock_local_addr(int32_t fd, char *buf, uint32_t buf_len,
    uint32_t *len, uint32_t *port);

NGX_WASI_IMPORT("sock_connect")
uint32_t ngx_wasi_sock_connect(const char *addr, uint32_t addr_len,
    uint32_t port, uint32_t fdflags, int32_t *fd);

NGX_WASI_IMPORT("sock_error")
uint32_t ngx_wasi_sock_error(int32_t fd, uint32_t *err);

NGX_WASI_IMPORT("sock_setopt")
uint32_t ngx_wasi_sock_setopt(int32_t fd, uint32_t option, uint32_t value);

NGX_WASI_IMPORT("proc_signals")
uint32_t ngx_wasi_proc_signals(uint64_t *set);


/*
 * Host errno values are WASI preview1 errno values; wasi-libc's errno is the
 * same numbering, so they are stored as they come.
 */
static int
ngx_wasi_errno(uint32_t err)
{
    if (err != 0) {
        errno = (int) err;
        return -1;
    }

    return 0;
}


/* users and groups */

static char  ngx_wasi_user[] = "nobody";
static char  ngx_wasi_group[] = "nogroup";
static char  ngx_wasi_empty[] = "";
static char  ngx_wasi_root[] = "/";
static char *ngx_wasi_no_members[] = { NULL };


/*
 * Every user and group name resolves to uid/gid 1: nginx only uses them to
 * switch users, which it never does because geteuid() is not 0.
 */
struct passwd *
getpwnam(const char *name)
{
    static struct passwd  pw;

    pw.pw_name = ngx_wasi_user;
    pw.pw_passwd = ngx_wasi_empty;
    pw.pw_uid = 1;
    pw.pw_gid = 1;
    pw.pw_gecos = ngx_wasi_empty;
    pw.pw_dir = ngx_wasi_root;
    pw.pw_shell = ngx_wasi_empty;

    return &pw;
}


struct group *
getgrnam(const char *name)
{
    static struct group  gr;

    gr.gr_name = ngx_wasi_group;
    gr.gr_passwd = ngx_wasi_empty;
    gr.gr_gid = 1;
    gr.gr_mem = ngx_wasi_no_members;

    return &gr;
}


int initgroups(const char *user, gid_t group) { return 0; }
uid_t getuid(void) { return 1; }
uid_t geteuid(void) { return 1; }
gid_t getgid(void) { return 1; }
int setuid(uid_t uid) { return 0; }
int setgid(gid_t gid) { return 0; }
int chown(const char *path, uid_t owner, gid_t group) { return 0; }
int fchown(int fd, uid_t owner, gid_t group) { return 0; }

/*
 * umask, chmod, and the modes stat() reports come from vkposix's file part
 * (images/lib/vkposix, libvkposix-fs.a): real host modes. Its getuid and
 * geteuid are weak: the ones above win, so nginx, which would try to
 * switch users as root, sees an unprivileged user.
 */


/* processes and signals */

pid_t
fork(void)
{
    errno = ENOSYS;
    return -1;
}


pid_t
waitpid(pid_t pid, int *status, int options)
{
    errno = ECHILD;
    return -1;
}


int
execve(const char *path, char *const argv[], char *const envp[])
{
    errno = ENOSYS;
    return -1;
}


pid_t getppid(void) { return 1; }
pid_t setsid(void) { return ngx_wasi_getpid(); }


int
kill(pid_t pid, int sig)
{
    /* nginx -s: there is no other nginx process to signal */
    errno = ESRCH;
    return -1;
}


/*
 * The handlers nginx installs (ngx_init_signals), by signal number: the
 * vkernel's signals run them from poll(), see ngx_wasi_take_signals().
 */

#define NGX_WASI_NSIG  65

static struct sigaction  ngx_wasi_sigactions[NGX_WASI_NSIG];


int
sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig <= 0 || sig >= NGX_WASI_NSIG) {
        errno = EINVAL;
        return -1;
    }

    if (old) {
        *old = ngx_wasi_sigactions[sig];
    }

    if (act) {
        ngx_wasi_sigactions[sig] = *act;
    }

    return 0;
}


int sigemptyset(sigset_t *set) { *set = 0; return 0; }
int sigaddset(sigset_t *set, int sig) { return 0; }
int sigprocmask(int how, const sigset_t *set, sigset_t *old) { return 0; }


int
sigsuspend(const sigset_t *set)
{
    errno = EINTR;
    return -1;
}


/*
 * The runner's environment, read once: nginx replaces environ with the
 * "env" directives' variables before it runs its cycle.
 */

static char  *ngx_wasi_listen_fds;
static int    ngx_wasi_host_pid;


static void
ngx_wasi_read_env(void)
{
    static int   done;
    char        *p;

    if (done) {
        return;
    }

    done = 1;

    p = getenv("VKERNEL_LISTEN_FDS");
    ngx_wasi_listen_fds = p ? strdup(p) : NULL;

    /*
     * The host process that stands for this instance: the one a harness
     * signals through the pid file.
     */
    p = getenv("VKERNEL_HOST_PID");
    ngx_wasi_host_pid = p ? atoi(p) : 0;
}


pid_t
ngx_wasi_getpid(void)
{
    ngx_wasi_read_env();

    if (ngx_wasi_host_pid > 0) {
        return ngx_wasi_host_pid;
    }

    return getpid();
}


/* resource limits */

int
getrlimit(int resource, struct rlimit *rlim)
{
    if (resource == RLIMIT_NOFILE) {
        rlim->rlim_cur = 1024;
        rlim->rlim_max = 1024;
        return 0;
    }

    rlim->rlim_cur = 0;
    rlim->rlim_max = 0;
    return 0;
}


int setrlimit(int resource, const struct rlimit *rlim) { return 0; }


/* names */

struct hostent *
gethostbyname(const char *name)
{
    static struct in_addr   addr;
    static char            *list[2];
    static struct hostent   he;

    if (strcmp(name, "localhost") == 0) {
        addr.s_addr = htonl(INADDR_LOOPBACK);

    } else if (inet_pton(AF_INET, name, &addr) != 1) {
        return NULL;
    }

    list[0] = (char *) &addr;
    list[1] = NULL;
    he.h_name = (char *) name;
    he.h_aliases = list + 1;
    he.h_addrtype = AF_INET;
    he.h_length = sizeof(struct in_addr);
    he.h_addr_list = list;

    return &he;
}


/* sockets */

int
socket(int domain, int type, int protocol)
{
    /* only the runner creates sockets: see ngx_wasi_listener() */
    errno = EACCES;
    return -1;
}


int
socketpair(int domain, int type, int protocol, int sv[2])
{
    errno = ENOSYS;
    return -1;
}


int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    errno = EACCES;
    return -1;
}


int
listen(int fd, int backlog)
{
    /* handed-over sockets already listen; nginx calls this to set backlog */
    return 0;
}


/*
 * Outgoing connections: the vkernel creates and connects a socket in one
 * call, so ngx_event_connect_peer() asks for both at once
 * (ngx_wasi_socket_connect) and the connect() that follows reports the
 * outcome kept here, per fd.
 */

#define NGX_WASI_MAX_FD  4096

static unsigned char  ngx_wasi_connecting[NGX_WASI_MAX_FD];
static unsigned char  ngx_wasi_connect_err[NGX_WASI_MAX_FD];


int
ngx_wasi_socket_connect(struct sockaddr *sa, socklen_t socklen)
{
    char                  text[NGX_SOCKADDR_STRLEN];
    int32_t               fd;
    uint32_t              err;
    in_port_t             port;
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    switch (sa->sa_family) {
    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
        port = ntohs(sin->sin_port);
        break;
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
        port = ntohs(sin6->sin6_port);
        break;
    default:
        errno = EAFNOSUPPORT;
        return -1;
    }

    err = ngx_wasi_sock_connect(text, strlen(text), port,
                                __WASI_FDFLAGS_NONBLOCK, &fd);

    if (err != 0 && err != EINPROGRESS) {
        errno = (int) err;
        return -1;
    }

    if (fd >= 0 && fd < NGX_WASI_MAX_FD) {
        ngx_wasi_connecting[fd] = 1;
        ngx_wasi_connect_err[fd] = (unsigned char) err;
    }

    return fd;
}


int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd >= 0 && fd < NGX_WASI_MAX_FD && ngx_wasi_connecting[fd]) {
        ngx_wasi_connecting[fd] = 0;
        return ngx_wasi_errno(ngx_wasi_connect_err[fd]);
    }

    /* only sockets from ngx_wasi_socket_connect() connect */
    errno = EACCES;
    return -1;
}


int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int  v;

    if (len < (socklen_t) sizeof(int)) {
        errno = EINVAL;
        return -1;
    }

    v = *(const int *) val;

    if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        return ngx_wasi_errno(ngx_wasi_sock_setopt(fd, 1, v));
    }

    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_KEEPALIVE:
            return ngx_wasi_errno(ngx_wasi_sock_setopt(fd, 2, v));
        case SO_SNDBUF:
            return ngx_wasi_errno(ngx_wasi_sock_setopt(fd, 3, v));
        case SO_RCVBUF:
            return ngx_wasi_errno(ngx_wasi_sock_setopt(fd, 4, v));
        }
    }

    /* SO_REUSEADDR, SO_LINGER...: the runner owns the host socket */
    return 0;
}


int
ngx_wasi_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    if (*len < (socklen_t) sizeof(int)) {
        errno = EINVAL;
        return -1;
    }

    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_TYPE:
            *(int *) val = SOCK_STREAM;
            *len = sizeof(int);
            return 0;
        case SO_ERROR: {
            uint32_t  err;

            if (ngx_wasi_errno(ngx_wasi_sock_error(fd, &err)) != 0) {
                return -1;
            }

            *(int *) val = (int) err;
            *len = sizeof(int);
            return 0;
        }
        case SO_RCVBUF:
        case SO_SNDBUF:
            *(int *) val = 65536;
            *len = sizeof(int);
            return 0;
        }
    }

    errno = ENOPROTOOPT;
    return -1;
}


/* text address and port from the vkernel -> sockaddr */
static int
ngx_wasi_sockaddr(char *text, uint32_t tlen, uint32_t port,
    struct sockaddr *addr, socklen_t *len)
{
    struct sockaddr_in    sin;
    struct sockaddr_in6   sin6;
    void                 *sa;
    socklen_t             salen;

    text[tlen] = '\0';

    ngx_memzero(&sin, sizeof(sin));
    ngx_memzero(&sin6, sizeof(sin6));

    if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t) port);
        sa = &sin;
        salen = sizeof(sin);

    } else if (inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t) port);
        sa = &sin6;
        salen = sizeof(sin6);

    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }

    if (addr && len) {
        ngx_memcpy(addr, sa, ngx_min(*len, salen));
        *len = salen;
    }

    return 0;
}


int
getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    char      text[64];
    uint32_t  tlen, port;

    if (ngx_wasi_errno(ngx_wasi_sock_local_addr(fd, text, sizeof(text) - 1,
                                                &tlen, &port))
        != 0)
    {
        return -1;
    }

    return ngx_wasi_sockaddr(text, tlen, port, addr, len);
}


int
getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    char      text[64];
    uint32_t  tlen, port;

    if (ngx_wasi_errno(ngx_wasi_sock_peer_addr(fd, text, sizeof(text) - 1,
                                               &tlen, &port))
        != 0)
    {
        return -1;
    }

    return ngx_wasi_sockaddr(text, tlen, port, addr, len);
}


#undef accept4

int
ngx_wasi_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int        s, err;
    socklen_t  plen;

    s = accept4(fd, NULL, NULL, flags);
    if (s == -1) {
        return -1;
    }

    if (addr == NULL || len == NULL) {
        return s;
    }

    /*
     * wasi-libc gives no peer address (family AF_UNSPEC), and nginx closes
     * a connection whose address it cannot print: ask the vkernel.
     */
    plen = *len;

    if (getpeername(s, addr, &plen) == -1) {
        err = errno;
        close(s);
        errno = err;
        return -1;
    }

    *len = plen;
    return s;
}


int
ngx_wasi_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return ngx_wasi_accept4(fd, addr, len, 0);
}


ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
    errno = ENOSYS;
    return -1;
}


ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
    errno = ENOSYS;
    return -1;
}


ssize_t
sendto(int fd, const void *buf, size_t n, int flags,
    const struct sockaddr *addr, socklen_t len)
{
    if (addr == NULL) {
        return send(fd, buf, n, flags);
    }

    errno = ENOSYS;
    return -1;
}


ssize_t
recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
    socklen_t *len)
{
    if (addr == NULL) {
        return recv(fd, buf, n, flags);
    }

    errno = ENOSYS;
    return -1;
}


/*
 * The listeners of VKERNEL_LISTEN_FDS ("fd=addr,fd=addr"), each taken once.
 */

#define NGX_WASI_MAX_LISTENERS  64

static int  ngx_wasi_nlisteners = -1;
static int  ngx_wasi_listener_fd[NGX_WASI_MAX_LISTENERS];
static int  ngx_wasi_listener_taken[NGX_WASI_MAX_LISTENERS];


static void
ngx_wasi_read_listeners(void)
{
    char  *p;
    int    fd;

    ngx_wasi_nlisteners = 0;

    ngx_wasi_read_env();

    p = ngx_wasi_listen_fds;
    if (p == NULL) {
        return;
    }

    while (*p && ngx_wasi_nlisteners < NGX_WASI_MAX_LISTENERS) {
        fd = atoi(p);
        ngx_wasi_listener_fd[ngx_wasi_nlisteners++] = fd;

        p = strchr(p, ',');
        if (p == NULL) {
            break;
        }
        p++;
    }
}


static int
ngx_wasi_is_wildcard(struct sockaddr *sa)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    switch (sa->sa_family) {
    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        return sin->sin_addr.s_addr == INADDR_ANY;
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
    }

    return 0;
}


int
ngx_wasi_listener(struct sockaddr *sa, socklen_t socklen)
{
    int                      i, pass;
    socklen_t                len;
    struct sockaddr_storage  have;

    if (ngx_wasi_nlisteners < 0) {
        ngx_wasi_read_listeners();
    }

    /*
     * First an exact match of address and port; then, for a wildcard
     * "listen" (a bare port), a handed-over listener with that port: the
     * runner binds loopback addresses only.
     */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1 && !ngx_wasi_is_wildcard(sa)) {
            break;
        }

        for (i = 0; i < ngx_wasi_nlisteners; i++) {
            if (ngx_wasi_listener_taken[i]) {
                continue;
            }

            len = sizeof(have);
            if (getsockname(ngx_wasi_listener_fd[i],
                            (struct sockaddr *) &have, &len) == -1)
            {
                continue;
            }

            if (pass == 0) {
                if (ngx_cmp_sockaddr((struct sockaddr *) &have, len,
                                     sa, socklen, 1)
                    != NGX_OK)
                {
                    continue;
                }

            } else if (ngx_inet_get_port((struct sockaddr *) &have)
                       != ngx_inet_get_port(sa))
            {
                continue;
            }

            ngx_wasi_listener_taken[i] = 1;
            return ngx_wasi_listener_fd[i];
        }
    }

    errno = EADDRNOTAVAIL;
    return -1;
}


/* timers and priorities */

int
setitimer(int which, const struct itimerval *value, struct itimerval *old)
{
    errno = ENOSYS;
    return -1;
}


int setpriority(int which, id_t who, int prio) { return 0; }


/* files */

int
dup2(int oldfd, int newfd)
{
    /*
     * Only used to point stderr at the error log; the runner keeps the
     * instance's stderr, so leave it be.
     */
    return newfd;
}


char *
realpath(const char *path, char *resolved)
{
    /*
     * Paths are resolved by the vkernel under its mounts, which give no
     * way back to a canonical name: the path is its own real path.
     */
    if (resolved == NULL) {
        return strdup(path);
    }

    if (ngx_strlen(path) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }

    return strcpy(resolved, path);
}


int
gethostname(char *name, size_t len)
{
    char  *h;

    /* the runner may pass the host's name; a guest has no name of its own */
    h = getenv("HOSTNAME");
    if (h == NULL || *h == '\0') {
        h = "localhost";
    }

    if (ngx_strlen(h) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }

    ngx_cpystrn((u_char *) name, (u_char *) h, len);

    return 0;
}



/*
 * Signals. The vkernel holds the host signals sent to the runner's process
 * until the guest next waits in poll_oneoff, which it then interrupts
 * (EINTR); the guest takes them with vkernel.proc_signals (vkernel/ABI.md,
 * "Signals"). nginx waits only in poll() (the poll module: the build has
 * no other), so poll() runs the recorded handlers after every wait: nginx's
 * own ngx_signal_handler sets ngx_quit, ngx_terminate, ngx_reopen... and
 * logs "signal N (SIGX) received", and the cycle acts on the flags once
 * ngx_process_events() returns, exactly as after a real signal. An EINTR
 * is passed on, so nginx logs "poll() failed (...: Interrupted system
 * call)" at info level, as natively (its handlers have no SA_RESTART).
 *
 * HUP runs nginx's handler too (ngx_reconfigure), but the single-process
 * cycle does not set up its event module again for the new cycle (poll
 * spins on "poll ready != events", natively too); compat's nginx shim
 * therefore reloads by passing QUIT and starting a new instance on the same
 * listeners, and never sends HUP itself.
 */

static void
ngx_wasi_take_signals(void)
{
    int               sig;
    uint64_t          set;
    siginfo_t         info;
    struct sigaction  sa;

    set = 0;

    if (ngx_wasi_proc_signals(&set) != 0) {
        return;
    }

    for (sig = 1; sig < NGX_WASI_NSIG - 1 && set != 0; sig++) {
        if (!(set & ((uint64_t) 1 << sig))) {
            continue;
        }

        set &= ~((uint64_t) 1 << sig);
        sa = ngx_wasi_sigactions[sig];

        if ((sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction) {
            ngx_memzero(&info, sizeof(siginfo_t));
            info.si_signo = sig;
            sa.sa_sigaction(sig, &info, NULL);

        } else if (sa.sa_handler == SIG_IGN) {
            continue;

        } else if (sa.sa_handler == SIG_DFL || sa.sa_handler == NULL) {

            /*
             * No handler yet (a signal before ngx_init_signals): the
             * default action, which for the signals a runner passes on
             * ends the process; the status is a shell's 128+n.
             */

            if (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH
                || sig == SIGCONT)
            {
                continue;
            }

            _Exit(128 + sig);

        } else {
            sa.sa_handler(sig);
        }
    }
}


#undef poll

int
ngx_wasi_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    int  n, err;

    n = poll(fds, nfds, timeout);
    err = errno;

    ngx_wasi_take_signals();

    errno = err;
    return n;
}
