/* vkposix: a signal set holds all 64 Linux signals (bit n-1 for signal n).
 * wasi-libc's placeholder is one byte; this header takes its place (same
 * include guard) because the vkposix include directory comes first. */
#ifndef __wasilibc___typedef_sigset_t_h
#define __wasilibc___typedef_sigset_t_h

typedef unsigned long long sigset_t;

#endif
