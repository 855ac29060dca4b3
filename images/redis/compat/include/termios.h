/* wasm32-wasi has no terminals: only the window-size query that memtest.c
 * makes, which fails (ioctl) so the default width is used. */
#ifndef COMPAT_TERMIOS_H
#define COMPAT_TERMIOS_H
#include <sys/ioctl.h>
struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; };
#ifndef TIOCGWINSZ
#define TIOCGWINSZ 0x5413
#endif
#endif
