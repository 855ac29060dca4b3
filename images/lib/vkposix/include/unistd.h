/* vkposix: wasi-libc's <unistd.h> with getpid, plus the process calls it
 * hides because preview1 has no processes: pipe, dup, getppid, alarm, pause;
 * and the identity calls it hides: getuid and friends, chown; and Linux's
 * copy_file_range. */
#ifndef VKPOSIX_UNISTD_H
#define VKPOSIX_UNISTD_H

#ifndef _WASI_EMULATED_GETPID
#define _WASI_EMULATED_GETPID 1
#endif
#include_next <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

int pipe(int[2]);
/* Copies of an fd sharing its open file description (vkernel fd_dup). */
int dup(int);
int dup2(int, int);
int dup3(int, int, int);
int pipe2(int[2], int);
pid_t getppid(void);
pid_t getpgrp(void);
pid_t getpgid(pid_t);
pid_t getsid(pid_t);
unsigned alarm(unsigned);
int pause(void);

/* The guest's identity (vkernel proc_cred) and ownership: chown succeeds
 * only where it changes nothing, as for an unprivileged user. */
uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
gid_t getegid(void);
int getgroups(int, gid_t[]);
int chown(const char *, uid_t, gid_t);
int fchown(int, uid_t, gid_t);
int lchown(const char *, uid_t, gid_t);
int fchownat(int, const char *, uid_t, gid_t, int);

/* Linux's copy between regular files, through the guest's memory. */
ssize_t copy_file_range(int, off_t *, int, off_t *, size_t, unsigned);

#ifdef __cplusplus
}
#endif

#endif
