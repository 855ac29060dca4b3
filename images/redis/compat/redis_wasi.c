/* The functions redis_wasi.h declares, for wasm32-wasi guests of the
 * vkernel. Sockets use the vkernel host module (vkernel/ABI.md):
 * sock_connect, sock_error, sock_peer_addr, sock_local_addr, sock_setopt.
 * Processes, pipes and signals are vkposix's; what is left here has no
 * host call behind it: no fork that returns twice, no dup2, no resource
 * limit to change. */
#include "redis_wasi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* This file calls the real wasi-libc functions. */
#undef accept
#undef getsockopt

#define VK(name) __attribute__((import_module("vkernel"), import_name(#name)))
VK(sock_connect) int vk_sock_connect(const char *addr, size_t addr_len, int port, int fdflags, int *fd);
VK(sock_error) int vk_sock_error(int fd, int *err);
VK(sock_peer_addr) int vk_sock_peer_addr(int fd, char *buf, size_t buf_len, size_t *len, int *port);
VK(sock_local_addr) int vk_sock_local_addr(int fd, char *buf, size_t buf_len, size_t *len, int *port);
VK(sock_setopt) int vk_sock_setopt(int fd, int option, int value);

#define VK_FDFLAG_NONBLOCK 4 /* WASI fdflags.nonblock */
enum { VK_OPT_NODELAY = 1, VK_OPT_KEEPALIVE = 2, VK_OPT_SNDBUF = 3, VK_OPT_RCVBUF = 4 };

/* ------------------------------------------------------------ addresses */

/* Fills sa (of *len bytes) from an IP text and a port; sets *len. */
static int fill_sockaddr(const char *ip, int port, struct sockaddr *sa, socklen_t *len) {
    struct sockaddr_storage ss;
    socklen_t n;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1) return -1;
        n = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1) return -1;
        n = sizeof(*s4);
    }
    if (sa != NULL && len != NULL) {
        memcpy(sa, &ss, *len < n ? *len : n);
        *len = n;
    }
    return 0;
}

/* addr_of asks the vkernel for a socket's peer or local address. */
static int addr_of(int fd, int peer, char *ip, size_t iplen, int *port) {
    size_t n = 0;
    int err = peer ? vk_sock_peer_addr(fd, ip, iplen - 1, &n, port)
                   : vk_sock_local_addr(fd, ip, iplen - 1, &n, port);
    if (err != 0) {
        errno = err;
        return -1;
    }
    ip[n] = '\0';
    return 0;
}

static int sockname(int fd, int peer, struct sockaddr *sa, socklen_t *len) {
    char ip[64];
    int port = 0;
    if (addr_of(fd, peer, ip, sizeof(ip), &port) == -1) return -1;
    if (fill_sockaddr(ip, port, sa, len) == -1) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int getpeername(int fd, struct sockaddr *sa, socklen_t *len) { return sockname(fd, 1, sa, len); }
int getsockname(int fd, struct sockaddr *sa, socklen_t *len) { return sockname(fd, 0, sa, len); }

/* compat_accept: wasi-libc's accept leaves the address AF_UNSPEC; the
 * vkernel knows the real peer. */
int compat_accept(int fd, struct sockaddr *sa, socklen_t *len) {
    int c = accept(fd, NULL, NULL);
    if (c == -1 || sa == NULL || len == NULL) return c;
    if (sockname(c, 1, sa, len) == -1) {
        /* No peer address (should not happen for TCP): a unique one. */
        char ip[] = "0.0.0.0";
        fill_sockaddr(ip, c, sa, len);
    }
    return c;
}

int compat_getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
    if (level == SOL_SOCKET && name == SO_ERROR) {
        int e = 0, err = vk_sock_error(fd, &e);
        if (err != 0) {
            errno = err;
            return -1;
        }
        if (val == NULL || len == NULL || *len < (socklen_t)sizeof(int)) {
            errno = EINVAL;
            return -1;
        }
        *(int *)val = e;
        *len = sizeof(int);
        return 0;
    }
    return getsockopt(fd, level, name, val, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    int opt = 0, v = (val != NULL && len >= (socklen_t)sizeof(int)) ? *(const int *)val : 0;
    if (level == IPPROTO_TCP && name == TCP_NODELAY) opt = VK_OPT_NODELAY;
    else if (level == SOL_SOCKET && name == SO_KEEPALIVE) opt = VK_OPT_KEEPALIVE;
    else if (level == SOL_SOCKET && name == SO_SNDBUF) opt = VK_OPT_SNDBUF;
    else if (level == SOL_SOCKET && name == SO_RCVBUF) opt = VK_OPT_RCVBUF;
    if (opt == 0) return 0; /* the rest (reuseaddr, keepalive timing, timeouts) is the host's */
    int err = vk_sock_setopt(fd, opt, v);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* Sockets are created by the vkernel only: see compat_listener and
 * compat_connect. */
int socket(int domain, int type, int proto) { (void)domain; (void)type; (void)proto; errno = ENOSYS; return -1; }
int bind(int fd, const struct sockaddr *sa, socklen_t len) { (void)fd; (void)sa; (void)len; errno = ENOSYS; return -1; }
int listen(int fd, int backlog) { (void)fd; (void)backlog; errno = ENOSYS; return -1; }
int connect(int fd, const struct sockaddr *sa, socklen_t len) { (void)fd; (void)sa; (void)len; errno = ENOSYS; return -1; }

/* Listeners already handed out, so that two bind addresses do not share
 * one socket. */
static int listeners_taken[64];
static int nlisteners_taken;

static int same_ip(const char *a, const char *b) {
    unsigned char x[16], y[16];
    int af = strchr(a, ':') ? AF_INET6 : AF_INET;
    if ((strchr(b, ':') ? AF_INET6 : AF_INET) != af) return 0;
    if (inet_pton(af, a, x) != 1 || inet_pton(af, b, y) != 1) return 0;
    return memcmp(x, y, af == AF_INET6 ? 16 : 4) == 0;
}

int compat_listener(const char *addr, int port, int af) {
    const char *list = getenv("VKERNEL_LISTEN_FDS");
    int any = addr == NULL || !strcmp(addr, "*") || !strcmp(addr, "::*") ||
              !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::");
    if (addr != NULL && !strcmp(addr, "localhost")) addr = af == AF_INET6 ? "::1" : "127.0.0.1";
    while (list != NULL && *list != '\0') {
        char *end;
        long fd = strtol(list, &end, 10);
        const char *next = strchr(list, ',');
        list = next ? next + 1 : NULL;
        if (end == NULL || *end != '=' || fd < 0) continue;
        char ip[64];
        int lport = 0, taken = 0;
        if (addr_of((int)fd, 0, ip, sizeof(ip), &lport) == -1) continue;
        if (lport != port) continue;
        if ((strchr(ip, ':') ? AF_INET6 : AF_INET) != af) continue;
        if (!any && !same_ip(addr, ip)) continue;
        for (int i = 0; i < nlisteners_taken; i++) taken |= listeners_taken[i] == fd;
        if (taken) continue;
        if (nlisteners_taken < (int)(sizeof(listeners_taken) / sizeof(listeners_taken[0])))
            listeners_taken[nlisteners_taken++] = (int)fd;
        return (int)fd;
    }
    errno = EADDRNOTAVAIL;
    return -1;
}

int compat_unix_listener(const char *path) {
    const char *list = getenv("VKERNEL_LISTEN_FDS");
    size_t n = strlen(path);
    while (list != NULL && *list != '\0') {
        char *end;
        long fd = strtol(list, &end, 10);
        const char *next = strchr(list, ',');
        size_t len = next ? (size_t)(next - end - 1) : strlen(end) - 1;
        list = next ? next + 1 : NULL;
        if (end == NULL || *end != '=' || fd < 0) continue;
        if (len == n && !memcmp(end + 1, path, n)) return (int)fd;
    }
    errno = EADDRNOTAVAIL;
    return -1;
}

void compat_release_listener(int fd) {
    for (int i = 0; i < nlisteners_taken; i++) {
        if (listeners_taken[i] == fd) {
            listeners_taken[i] = listeners_taken[--nlisteners_taken];
            return;
        }
    }
    close(fd);
}

int compat_connect(const char *addr, int port, int nonblock) {
    unsigned char buf[16];
    int fd = -1;
    if (!strcmp(addr, "localhost")) addr = "127.0.0.1";
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
        errno = EHOSTUNREACH; /* no resolver in the guest: IP literals only */
        return -1;
    }
    int err = vk_sock_connect(addr, strlen(addr), port, nonblock ? VK_FDFLAG_NONBLOCK : 0, &fd);
    if (err == EINPROGRESS && nonblock) return fd;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ resolver */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    int family = hints ? hints->ai_family : AF_UNSPEC;
    int passive = hints && (hints->ai_flags & AI_PASSIVE);
    int port = service ? atoi(service) : 0;
    const char *ip;
    if (node == NULL) ip = passive ? (family == AF_INET6 ? "::" : "0.0.0.0") : (family == AF_INET6 ? "::1" : "127.0.0.1");
    else if (!strcmp(node, "localhost")) ip = family == AF_INET6 ? "::1" : "127.0.0.1";
    else ip = node;
    int af = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (family != AF_UNSPEC && family != af) return EAI_FAMILY;
    struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_storage));
    if (ai == NULL) return EAI_MEMORY;
    ai->ai_addr = (struct sockaddr *)(ai + 1);
    ai->ai_addrlen = sizeof(struct sockaddr_storage);
    if (fill_sockaddr(ip, port, ai->ai_addr, &ai->ai_addrlen) == -1) {
        free(ai);
        return EAI_NONAME;
    }
    ai->ai_family = af;
    ai->ai_socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
    ai->ai_protocol = IPPROTO_TCP;
    *res = ai;
    return 0;
}

void freeaddrinfo(struct addrinfo *ai) {
    while (ai != NULL) {
        struct addrinfo *next = ai->ai_next;
        free(ai);
        ai = next;
    }
}

const char *gai_strerror(int err) {
    switch (err) {
    case EAI_NONAME: return "name does not resolve (only IP literals and localhost in wasm32-wasi)";
    case EAI_FAMILY: return "address family not supported";
    case EAI_MEMORY: return "out of memory";
    default: return "resolver error";
    }
}

/* ------------------------------------------------------------ processes */

/* A fork that returns twice cannot be had in wasm; Redis forks through
 * vkposix_fork at its call sites (patch 0003). What is left calling fork()
 * is daemonize, which the vkernel's runners never ask for. */
pid_t fork(void) { errno = ENOSYS; return -1; }
int dup2(int from, int to) { (void)from; (void)to; errno = ENOSYS; return -1; }

/* The vkernel starts a guest in "/"; a runner that starts it as a native
 * program, in a working directory (PWD) mounted at its host path, expects
 * relative paths (a config file's "dir ./tests/tmp/x") to resolve there. */
__attribute__((constructor)) static void compat_enter_pwd(void) {
    const char *pwd = getenv("PWD");
    if (pwd != NULL && pwd[0] == '/') (void)chdir(pwd);
}
pid_t setsid(void) { errno = EPERM; return -1; }
int execve(const char *path, char *const argv[], char *const envp[]) {
    (void)path; (void)argv; (void)envp; errno = ENOSYS; return -1;
}

static mode_t current_umask = 022;
mode_t umask(mode_t mask) { mode_t old = current_umask; current_umask = mask & 0777; return old; }
int chmod(const char *path, mode_t mode) { (void)path; (void)mode; return 0; }
int fchmod(int fd, mode_t mode) { (void)fd; (void)mode; return 0; }

int getrlimit(int res, struct rlimit *rl) {
    rl->rlim_cur = rl->rlim_max = res == RLIMIT_NOFILE ? 65536 : RLIM_INFINITY;
    return 0;
}
int setrlimit(int res, const struct rlimit *rl) { (void)res; (void)rl; errno = EPERM; return -1; }
void tzset(void) {}

/* ------------------------------------------------------------ files */

int mkstemp(char *tmpl) {
    size_t n = strlen(tmpl);
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[6];
        arc4random_buf(r, sizeof(r));
        for (int i = 0; i < 6; i++) tmpl[n - 6 + i] = chars[r[i] % (sizeof(chars) - 1)];
        int fd = open(tmpl, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd != -1 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

char *get_current_dir_name(void) {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof(buf)) == NULL) return NULL;
    return strdup(buf);
}

/* One process owns its files: advisory locks always succeed. */
int flock(int fd, int op) { (void)fd; (void)op; return 0; }
