/* wasi-libc's signal.h (with _WASI_EMULATED_SIGNAL) plus what it leaves
 * out: sigaction and signal sets. A wasm guest receives no asynchronous
 * signals: the vkernel holds host signals until the guest waits, and the
 * event loop runs the recorded handlers then (compat_take_signals); kill()
 * only knows this process. */
#ifndef COMPAT_SIGNAL_H
#define COMPAT_SIGNAL_H
#include_next <signal.h>
#include <sys/types.h>

typedef struct {
    int si_signo, si_errno, si_code;
    pid_t si_pid;
    uid_t si_uid;
    void *si_addr;
    int si_status;
} siginfo_t;

struct sigaction {
    union {
        void (*sa_handler)(int);
        void (*sa_sigaction)(int, siginfo_t *, void *);
    } compat_handler;
    sigset_t sa_mask;
    int sa_flags;
};
#define sa_handler compat_handler.sa_handler
#define sa_sigaction compat_handler.sa_sigaction

#define SA_NOCLDSTOP 1
#define SA_NOCLDWAIT 2
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000
#ifndef SIG_BLOCK
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
#endif

int sigaction(int sig, const struct sigaction *act, struct sigaction *old);
int sigemptyset(sigset_t *set);
int sigfillset(sigset_t *set);
int sigaddset(sigset_t *set, int sig);
int sigdelset(sigset_t *set, int sig);
int sigismember(const sigset_t *set, int sig);
int sigprocmask(int how, const sigset_t *set, sigset_t *old);
int kill(pid_t pid, int sig);
#endif
