/* wasm32-wasi has no processes. waitpid reports only the "children" that
 * the compat layer recorded as already exited (see compat_child_exited in
 * redis_wasi.h): fork-less BGSAVE/BGREWRITEAOF. */
#ifndef COMPAT_SYS_WAIT_H
#define COMPAT_SYS_WAIT_H
#include <sys/types.h>
#define WNOHANG 1
#define WUNTRACED 2
#define WEXITSTATUS(s) (((s) & 0xff00) >> 8)
#define WTERMSIG(s) ((s) & 0x7f)
#define WIFEXITED(s) (!WTERMSIG(s))
#define WIFSIGNALED(s) (((s) & 0xffff) - 1U < 0xffu)
pid_t waitpid(pid_t pid, int *status, int options);
pid_t wait3(int *status, int options, void *rusage);
#endif
