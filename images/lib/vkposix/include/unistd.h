/* vkposix: wasi-libc's <unistd.h> with getpid, plus the process calls it
 * hides because preview1 has no processes: pipe, getppid, alarm, pause. */
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
int pipe2(int[2], int);
pid_t getppid(void);
pid_t getpgrp(void);
pid_t getpgid(pid_t);
pid_t getsid(pid_t);
unsigned alarm(unsigned);
int pause(void);

#ifdef __cplusplus
}
#endif

#endif
