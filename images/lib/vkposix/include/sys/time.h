/* vkposix: wasi-libc's <sys/time.h> plus the interval timer it hides
 * (ITIMER_REAL only: the others answer EINVAL). */
#ifndef VKPOSIX_SYS_TIME_H
#define VKPOSIX_SYS_TIME_H

#include_next <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ITIMER_REAL 0
#define ITIMER_VIRTUAL 1
#define ITIMER_PROF 2

struct itimerval {
	struct timeval it_interval;
	struct timeval it_value;
};

int getitimer(int, struct itimerval *);
int setitimer(int, const struct itimerval *__restrict, struct itimerval *__restrict);

#ifdef __cplusplus
}
#endif

#endif
