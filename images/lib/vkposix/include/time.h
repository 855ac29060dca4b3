/* vkposix: wasi-libc's <time.h> plus the time zone interface it leaves out
 * (it has no time zone code: UTC only): tzset and the tzname, timezone and
 * daylight variables, which src/time.c defines. With src/time.ldflags,
 * wasi-libc's localtime, localtime_r, ctime, mktime and strftime's %Z and
 * %z follow TZ, as glibc's do (README.md, "Local time"). */
#ifndef VKPOSIX_TIME_H
#define VKPOSIX_TIME_H

#include_next <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_POSIX_SOURCE) || defined(_POSIX_C_SOURCE) || defined(_XOPEN_SOURCE) || defined(_GNU_SOURCE) || \
	defined(_BSD_SOURCE)
void tzset(void);
extern char *tzname[2];
#endif

#if defined(_XOPEN_SOURCE) || defined(_BSD_SOURCE) || defined(_GNU_SOURCE)
extern int daylight;
extern long timezone;
#endif

#ifdef __cplusplus
}
#endif

#endif
