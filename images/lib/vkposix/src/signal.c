/* Signals: the handler table, the mask, and running handlers when the host
 * reports caught signals (vkernel.proc_signals). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* SIG_IGN and SIG_ERR are functions in wasi-libc's <signal.h> (1 is a
 * valid function pointer on wasm); the library defines them, as
 * -lwasi-emulated-signal would. */
void __SIG_IGN(int sig) { (void)sig; }
void __SIG_ERR(int sig) { (void)sig; }

static struct sigaction handlers[_NSIG];
static sigset_t blocked;  /* sigprocmask */
static sigset_t deferred; /* taken from the host, not yet run (blocked) */

static int valid(int sig) { return sig >= 1 && sig < _NSIG; }

/* tell_host gives the host the disposition the handler table and the mask
 * imply. A blocked signal with the default action is caught by the host,
 * so that it waits here until it is unblocked, as a blocked signal waits
 * natively; an ignored one is dropped even when blocked, as on Linux. */
static void tell_host(int sig) {
	void (*h)(int) = handlers[sig].sa_handler;
	uint32_t action = VKPOSIX_SIG_CATCH;
	if (h == SIG_IGN)
		action = VKPOSIX_SIG_IGNORE;
	else if (h == SIG_DFL)
		action = (blocked & VKPOSIX_BIT(sig)) ? VKPOSIX_SIG_CATCH : VKPOSIX_SIG_DEFAULT;
	if (sig == SIGKILL || sig == SIGSTOP)
		action = VKPOSIX_SIG_DEFAULT;
	__vkernel_proc_sigaction(sig, action);
}

int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old) {
	if (!valid(sig) || (act && (sig == SIGKILL || sig == SIGSTOP))) {
		errno = EINVAL;
		return -1;
	}
	if (old)
		*old = handlers[sig];
	if (act) {
		handlers[sig] = *act;
		tell_host(sig);
		if (act->sa_handler == SIG_IGN || act->sa_handler == SIG_DFL)
			deferred &= ~VKPOSIX_BIT(sig);
	}
	return 0;
}

void (*signal(int sig, void (*handler)(int)))(int) {
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART; /* BSD semantics, as glibc and musl give signal() */
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

void (*bsd_signal(int sig, void (*handler)(int)))(int) { return signal(sig, handler); }

int siginterrupt(int sig, int flag) {
	if (!valid(sig)) {
		errno = EINVAL;
		return -1;
	}
	if (flag)
		handlers[sig].sa_flags &= ~SA_RESTART;
	else
		handlers[sig].sa_flags |= SA_RESTART;
	return 0;
}

/* run runs the handlers of the deferred signals that are not blocked,
 * lowest signal first. It returns how many ran and, in *restart, whether
 * all of them have SA_RESTART. */
static int run(int *restart) {
	int ran = 0;
	*restart = 1;
	for (;;) {
		sigset_t ready = deferred & ~blocked;
		if (!ready)
			return ran;
		int sig = __builtin_ctzll(ready) + 1;
		deferred &= ~VKPOSIX_BIT(sig);
		struct sigaction sa = handlers[sig];
		if (sa.sa_handler == SIG_IGN)
			continue;
		if (sa.sa_handler == SIG_DFL) {
			__vkposix_default_action(sig);
			continue;
		}
		sigset_t saved = blocked;
		blocked |= sa.sa_mask;
		if (!(sa.sa_flags & SA_NODEFER))
			blocked |= VKPOSIX_BIT(sig);
		if (sa.sa_flags & SA_RESETHAND) {
			memset(&handlers[sig], 0, sizeof handlers[sig]);
			tell_host(sig);
		}
		if (!(sa.sa_flags & SA_RESTART))
			*restart = 0;
		if (sa.sa_flags & SA_SIGINFO) {
			siginfo_t info;
			memset(&info, 0, sizeof info);
			info.si_signo = sig;
			info.si_code = sig == SIGALRM ? SI_TIMER : SI_USER;
			sa.sa_sigaction(sig, &info, NULL);
		} else {
			sa.sa_handler(sig);
		}
		blocked = saved;
		ran++;
	}
}

/* take moves the host's pending signals to deferred. */
static void take(void) {
	uint64_t set = 0;
	if (__vkernel_proc_signals(&set) != 0)
		return;
	/* The host's bit n is signal n; a sigset_t's bit n-1. */
	deferred |= set >> 1;
}

int vkposix_take_signals(void) {
	int restart;
	take();
	return run(&restart);
}

int __vkposix_interrupted(int restartable) {
	int restart;
	take();
	int ran = run(&restart);
	return ran == 0 || (restart && restartable);
}

void __vkposix_default_action(int sig) {
	/* The host applies it: terminate, or drop for SIGCHLD and the like. */
	__vkernel_proc_sigaction(sig, VKPOSIX_SIG_DEFAULT);
	__vkernel_proc_kill(getpid(), sig);
	tell_host(sig);
}

int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
	sigset_t was = blocked;
	if (old)
		*old = was;
	if (!set)
		return 0;
	switch (how) {
	case SIG_BLOCK:
		blocked |= *set;
		break;
	case SIG_UNBLOCK:
		blocked &= ~*set;
		break;
	case SIG_SETMASK:
		blocked = *set;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	blocked &= ~(VKPOSIX_BIT(SIGKILL) | VKPOSIX_BIT(SIGSTOP));
	for (int sig = 1; sig < _NSIG; sig++)
		if (((was ^ blocked) & VKPOSIX_BIT(sig)) && handlers[sig].sa_handler == SIG_DFL)
			tell_host(sig);
	/* Signals unblocked now are delivered before the call returns. */
	vkposix_take_signals();
	return 0;
}

int pthread_sigmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
	return sigprocmask(how, set, old) < 0 ? errno : 0;
}

int sigpending(sigset_t *set) {
	vkposix_take_signals();
	*set = deferred & blocked;
	return 0;
}

int sigsuspend(const sigset_t *mask) {
	sigset_t saved;
	sigprocmask(SIG_SETMASK, mask, &saved);
	for (;;) {
		if (vkposix_take_signals() > 0)
			break;
		/* Wait for the host to report a signal: a long clock that any
		 * caught signal cuts short with EINTR. */
		__wasi_subscription_t sub;
		memset(&sub, 0, sizeof sub);
		sub.u.tag = __WASI_EVENTTYPE_CLOCK;
		sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
		sub.u.u.clock.timeout = 3600ull * 1000000000ull;
		__wasi_event_t ev;
		__wasi_size_t n;
		(void)__real___wasi_poll_oneoff(&sub, &ev, 1, &n);
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	errno = EINTR;
	return -1;
}

int pause(void) {
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	return sigsuspend(&mask);
}

int kill(pid_t pid, int sig) {
	int e = __vkernel_proc_kill(pid, sig);
	if (e) {
		errno = e;
		return -1;
	}
	/* A signal sent to the caller is delivered before kill returns. */
	if (sig != 0 && (pid == getpid() || pid == 0 || pid == -getpid()))
		vkposix_take_signals();
	return 0;
}

int killpg(pid_t pgrp, int sig) {
	if (pgrp < 0) {
		errno = EINVAL;
		return -1;
	}
	return kill(-pgrp, sig);
}

int raise(int sig) { return kill(getpid(), sig); }

int sigemptyset(sigset_t *set) {
	*set = 0;
	return 0;
}

int sigfillset(sigset_t *set) {
	*set = ~0ull;
	return 0;
}

int sigaddset(sigset_t *set, int sig) {
	if (!valid(sig)) {
		errno = EINVAL;
		return -1;
	}
	*set |= VKPOSIX_BIT(sig);
	return 0;
}

int sigdelset(sigset_t *set, int sig) {
	if (!valid(sig)) {
		errno = EINVAL;
		return -1;
	}
	*set &= ~VKPOSIX_BIT(sig);
	return 0;
}

int sigismember(const sigset_t *set, int sig) {
	if (!valid(sig)) {
		errno = EINVAL;
		return -1;
	}
	return (*set & VKPOSIX_BIT(sig)) != 0;
}

int sigisemptyset(const sigset_t *set) { return *set == 0; }

int sigorset(sigset_t *dst, const sigset_t *a, const sigset_t *b) {
	*dst = *a | *b;
	return 0;
}

int sigandset(sigset_t *dst, const sigset_t *a, const sigset_t *b) {
	*dst = *a & *b;
	return 0;
}

void psignal(int sig, const char *msg) {
	if (msg && *msg)
		fprintf(stderr, "%s: %s\n", msg, strsignal(sig));
	else
		fprintf(stderr, "%s\n", strsignal(sig));
}

/* __vkposix_forked resets what a forked child does not inherit: pending
 * signals. */
void __vkposix_forked(void) { deferred = 0; }

_Static_assert(sizeof(sigset_t) == 8, "sigset_t must be vkposix's (its include directory first)");
