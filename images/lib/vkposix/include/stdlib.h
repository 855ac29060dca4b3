/* vkposix: wasi-libc's <stdlib.h>, plus realpath, which wasi-libc hides
 * (it has no absolute paths of its own) and the library defines over
 * getcwd, lstat and readlink. */
#ifndef VKPOSIX_STDLIB_H
#define VKPOSIX_STDLIB_H

#include_next <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

char *realpath(const char *__restrict, char *__restrict);

#ifdef __cplusplus
}
#endif

#endif
