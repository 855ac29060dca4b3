
/*
 * nginx on WebAssembly (wasm32-wasi) in compat's vkernel: the POSIX calls
 * wasi-libc lacks, with the behaviour of one unprivileged process that owns
 * the listeners its runner handed over. See ngx_wasi.h.
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
mode_t umask(mode_t mask) { return 022; }


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


int
sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (old) {
        ngx_memzero(old, sizeof(struct sigaction));
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
static char  *ngx_wasi_control_addr;
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

    p = getenv("NGX_WASI_CONTROL");
    ngx_wasi_control_addr = p ? strdup(p) : NULL;

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


static int ngx_wasi_control_fd(void);


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
            if (ngx_wasi_listener_taken[i]
                || ngx_wasi_listener_fd[i] == ngx_wasi_control_fd())
            {
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


int chmod(const char *path, mode_t mode) { return 0; }


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
 * Signals. The vkernel delivers none, so the runner sends them over a
 * control listener it hands over like the others and names in
 * NGX_WASI_CONTROL ("127.0.0.1:PORT"): it connects and writes one letter
 * per signal, Q (QUIT), T (TERM/INT), U (USR1), which set the flags
 * nginx's signal handler sets. The cycle acts on them after the event that
 * read them, as after a real signal. There is no letter for HUP: the
 * single-process cycle re-reads its configuration without setting up its
 * event module again (poll then spins on "poll ready != events", natively
 * too), so the runner reloads by starting a new instance on the same
 * listeners.
 */

static int
ngx_wasi_control_fd(void)
{
    static int  fd = -2;
    int         i;
    char        text[64], want[64];
    uint32_t    tlen, port;

    if (fd != -2) {
        return fd;
    }

    fd = -1;

    ngx_wasi_read_env();

    if (ngx_wasi_control_addr == NULL) {
        return fd;
    }

    if (ngx_wasi_nlisteners < 0) {
        ngx_wasi_read_listeners();
    }

    for (i = 0; i < ngx_wasi_nlisteners; i++) {
        if (ngx_wasi_sock_local_addr(ngx_wasi_listener_fd[i], text,
                                     sizeof(text) - 1, &tlen, &port)
            != 0)
        {
            continue;
        }

        text[tlen] = '\0';
        ngx_sprintf((u_char *) want, "%s:%uD%Z", text, port);

        if (strcmp(want, ngx_wasi_control_addr) == 0) {
            fd = ngx_wasi_listener_fd[i];
            break;
        }
    }

    return fd;
}


static void
ngx_wasi_control_read(ngx_event_t *rev)
{
    u_char             buf[16];
    ssize_t            n, i;
    ngx_connection_t  *c;

    c = rev->data;

    for ( ;; ) {
        n = recv(c->fd, buf, sizeof(buf), 0);

        if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
            return;
        }

        if (n <= 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            switch (buf[i]) {
            case 'Q':
                ngx_quit = 1;
                break;
            case 'T':
                ngx_terminate = 1;
                break;
            case 'U':
                ngx_reopen = 1;
                break;
            }
        }
    }

    ngx_close_connection(c);
}


static void
ngx_wasi_control_accept(ngx_event_t *ev)
{
    int                s;
    ngx_connection_t  *lc, *c;

    lc = ev->data;

    for ( ;; ) {
        s = accept4(lc->fd, NULL, NULL, SOCK_NONBLOCK);
        if (s == -1) {
            return;
        }

        c = ngx_get_connection(s, ev->log);
        if (c == NULL) {
            close(s);
            return;
        }

        c->read->handler = ngx_wasi_control_read;
        c->read->log = ev->log;

        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_close_connection(c);
            return;
        }

        ngx_wasi_control_read(c->read);
    }
}


ngx_int_t
ngx_wasi_control_init(ngx_cycle_t *cycle)
{
    int                fd;
    ngx_connection_t  *c;

    fd = ngx_wasi_control_fd();
    if (fd == -1) {
        return NGX_OK;
    }

    if (ngx_nonblocking(fd) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      ngx_nonblocking_n " of the control listener failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->read->handler = ngx_wasi_control_accept;
    c->read->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
