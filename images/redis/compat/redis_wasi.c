/* The functions redis_wasi.h declares, for wasm32-wasi guests of the
 * vkernel. Sockets, processes, pipes and signals are vkposix's
 * (images/lib/vkposix); what is left here is taking the listeners the
 * runner hands over, and what has no host call behind it: no fork that
 * returns twice, no dup2, no resource limit to change. */
#include "redis_wasi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ listeners */

/* local_ip writes a socket's own address as text and its port. */
static int local_ip(int fd, char *ip, size_t iplen, int *port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) return -1;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        *port = ntohs(s4->sin_port);
        return inet_ntop(AF_INET, &s4->sin_addr, ip, iplen) ? 0 : -1;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        *port = ntohs(s6->sin6_port);
        return inet_ntop(AF_INET6, &s6->sin6_addr, ip, iplen) ? 0 : -1;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

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
        if (local_ip((int)fd, ip, sizeof(ip), &lport) == -1) continue;
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
