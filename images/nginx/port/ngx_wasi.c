
/*
 * nginx on WebAssembly (wasm32-wasi) in compat's vkernel: the POSIX calls
 * wasi-libc lacks, with the behaviour of one unprivileged process. Sockets
 * are vkposix's (its net part); TCP listeners the runner handed over are
 * taken by address. See ngx_wasi.h.
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
#include <vkposix_net.h>


/* the vkernel host module (vkernel/ABI.md) */

#define NGX_WASI_IMPORT(name)                                                 \
    __attribute__((import_module("vkernel"), import_name(name)))

NGX_WASI_IMPORT("proc_signals")
uint32_t ngx_wasi_proc_signals(uint64_t *set);


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


/*
 * The listeners of VKERNEL_LISTEN_FDS ("fd=addr,fd=addr"), each taken once:
 * the runner binds every TCP "listen" address on the host and keeps the
 * sockets across reloads (a new instance takes over the queued
 * connections). Their addresses come from getsockname() (vkposix).
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


/*
 * vkposix's socket calls reach the signal layer through these hooks
 * (vkposix_net.h): after a blocking call's EINTR, and after the EPIPE that
 * comes with SIGPIPE. nginx's sockets are non-blocking and it ignores
 * SIGPIPE, so they rarely run; when they do, the handlers run as after
 * poll(), and the call returns EINTR (nginx's handlers have no
 * SA_RESTART).
 */

int
__vkposix_interrupted(int restartable)
{
    ngx_wasi_take_signals();
    return 0;
}


int
vkposix_take_signals(void)
{
    ngx_wasi_take_signals();
    return 0;
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
