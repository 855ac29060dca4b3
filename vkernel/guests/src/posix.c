/* posix: exercises the vkposix library (images/lib/vkposix) over the
 * vkernel's process calls. One mode per run; prints "key=value" lines. The
 * program spawns and forks itself: SELF is its own guest path.
 *
 *   posix exit N                   exit with status N
 *   posix echo WORD                print WORD
 *   posix env NAME                 print the variable
 *   posix cwd                      print the working directory
 *   posix ids                      print pid and ppid
 *   posix sleep MS                 sleep, then exit 0
 *   posix spin [TEXT]              (print TEXT, then) compute forever without host calls
 *   posix trap                     trap (unreachable)
 *   posix write-later MS TEXT      sleep, then write TEXT to fd 1
 *   posix pipe                     a pipe within the process
 *   posix capture SELF ARG...      spawn SELF ARG... with stdout on a pipe, print what it wrote and its status
 *   posix status SELF ARG...       spawn SELF ARG..., print how it ended
 *   posix spawn-env SELF           spawn SELF env X with X=from-parent
 *   posix spawn-cwd SELF DIR       spawn SELF cwd with a chdir action
 *   posix spawnp NAME ARG...       posix_spawnp through PATH, print how it ended
 *   posix deny PATH                posix_spawn of PATH, print the error
 *   posix orphan SELF ARG...       spawn SELF ARG..., print orphan=PID, exit 0 without waiting for it
 *   posix kill-child SELF SIG MODE spawn SELF MODE 60000 (sleep or spin), kill it with SIG
 *   posix kill-parent SELF         a SIGUSR1 handler, then a child that signals its parent (this)
 *   posix signal-parent            kill(getppid(), SIGUSR1), print the result
 *   posix wnohang SELF             waitpid WNOHANG before and after the child ends
 *   posix ids-child SELF           print own pid, then the child's view of its ppid
 *   posix raise                    a handler for SIGUSR1, raise it
 *   posix mask                     block SIGUSR1, raise, see it pending, unblock
 *   posix alarm                    a SIGALRM handler, alarm(1), pause()
 *   posix alarm-default            alarm(1), then sleep: killed by SIGALRM
 *   posix itimer                   setitimer/getitimer values
 *   posix eintr SELF               a blocking pipe read cut short by SIGALRM (no SA_RESTART)
 *   posix restart SELF             the same read restarted (SA_RESTART) until a child writes
 *   posix sigpipe                  write to a pipe without reader (default: killed)
 *   posix sigpipe-ignored          the same with SIGPIPE ignored: EPIPE
 *   posix sigchld SELF             a SIGCHLD handler runs when a child ends
 *   posix poll SELF                poll a pipe a child writes to later
 *   posix spawn-loop SELF          spawn sleepers until EAGAIN, count them
 *   posix spawn-seq SELF N         spawn SELF exit I for I < N, one after another, print childI=STATUS
 *   posix fork-seq N               fork children that exit I for I < N, one after another, print childI=STATUS
 *   posix end-children SELF        spawn SELF exit 0 twice, then a chain of two (tree SELF 1 spin);
 *                                  print chain=STATUS when it ends, then try one more spawn
 *   posix tree SELF DEPTH [spin]   spawn a chain of DEPTH processes, print each pid, wait; the
 *                                  last sleeps (or computes without host calls)
 *   posix fork                     fork: the child sees memory as at the call, shares a pipe
 *   posix fork-loop                fork sleepers until EAGAIN, count them
 *   posix fork-heap MB             fork with MB of heap touched, print the child's checksum
 *   posix dup SELF                 dup, dup2, dup3, fcntl F_DUPFD share a pipe end; a child gets a copy
 *   posix spawn-mask SELF          posix_spawn with SETSIGMASK {SIGUSR1}: the child (masked-raise)
 *                                  survives raising it; then with the parent's own mask inherited
 *   posix masked-raise             print whether SIGUSR1 is blocked and the environment's mask
 *                                  variable, raise SIGUSR1, print alive=1
 *   posix spawn-umask SELF         spawn SELF show-umask under umask 027, under 022, and under 022
 *                                  with VKPOSIX_UMASK=0777 in the environment passed
 *   posix show-umask               print the umask and whether the umask variable is set
 *   posix sendfile                 sendfile between files (with and without an offset), to a
 *                                  pipe, from a pipe, past the end
 *   posix copy                     copy_file_range between files; splice file to pipe and pipe to
 *                                  file, with offsets; the errors of both
 *   posix eintr-reader             test_file_eintr's reader: a SIGINT handler that writes "$\n" to
 *                                  stderr, "W\n" there once it is set, then read stdin to EOF;
 *                                  SIGINT back to default before exit, as Python's finalization
 *   posix eintr-loop SELF N        test_file_eintr's parent, N times: SIGINT the reader every 50 ms
 *                                  until its stderr is readable, once more, then end its input;
 *                                  print runs=N killed=K (children that died of a SIGINT)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vkposix.h>

extern char **environ;

static void msleep(int ms) {
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void describe(const char *what, int status) {
	if (WIFEXITED(status))
		printf("%s=exited code=%d\n", what, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("%s=signaled sig=%d\n", what, WTERMSIG(status));
	else
		printf("%s=other raw=%#x\n", what, status);
}

/* run spawns argv[0] with argv, stdio shared, and waits. */
static pid_t start(char **argv, posix_spawn_file_actions_t *fa) {
	pid_t pid = -1;
	int e = posix_spawn(&pid, argv[0], fa, NULL, argv, environ);
	if (e) {
		printf("spawn_errno=%d\n", e);
		exit(3);
	}
	return pid;
}

static int wait_for(pid_t pid) {
	int status = 0;
	pid_t got;
	while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (got != pid) {
		printf("waitpid=%d errno=%d\n", got, errno);
		exit(3);
	}
	return status;
}

static volatile sig_atomic_t hits, int_hits;
static void on_int(int sig) { int_hits++, (void)sig; }
static void on_signal(int sig) { hits++, (void)sig; }

static int sigs_seen[65];
static void on_info(int sig, siginfo_t *info, void *ctx) {
	(void)ctx;
	if (info->si_signo == sig)
		sigs_seen[sig]++;
}

static void catch(int sig, int flags) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, NULL) < 0) {
		printf("sigaction errno=%d\n", errno);
		exit(3);
	}
}

/* State for the fork tests: the child must see it as it was at the call. */
static int shared_value = 1;
/* Counts the runs of a constructor: once per program, never again in a
 * fork child, which starts in a copy of memory where it has run (volatile:
 * the compiler would otherwise fold the constructor into the initial
 * value). */
static volatile int ctor_runs;
__attribute__((constructor)) static void count_ctor_runs(void) { ctor_runs++; }
static int fork_pipe[2];
static pid_t parent_pid;

static int go_pipe[2];

static int fork_child(void *arg) {
	char buf[128], go;
	/* The parent writes to its memory before it lets the child go on. */
	read(go_pipe[0], &go, 1);
	int n = snprintf(buf, sizeof buf, "value=%d arg=%s own_pid=%d parent=%d ctors=%d", shared_value, (char *)arg,
	                 getpid() != parent_pid, getppid() == parent_pid, ctor_runs);
	write(fork_pipe[1], buf, n);
	return 7;
}

static int exit_with(void *arg) { _exit((int)(long)arg); }

static int sleeper(void *arg) {
	msleep(atoi(arg));
	return 0;
}

static unsigned char *heap;
static size_t heap_len;

static int sum_heap(void *arg) {
	(void)arg;
	unsigned long sum = 0;
	for (size_t i = 0; i < heap_len; i += 4096)
		sum += heap[i];
	printf("child_sum=%lu\n", sum);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	const char *mode = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(mode, "exit")) {
		return atoi(argv[2]);
	} else if (!strcmp(mode, "echo")) {
		printf("%s\n", argv[2]);
	} else if (!strcmp(mode, "env")) {
		const char *v = getenv(argv[2]);
		printf("env=%s\n", v ? v : "(unset)");
	} else if (!strcmp(mode, "cwd")) {
		char buf[256];
		printf("cwd=%s\n", getcwd(buf, sizeof buf) ? buf : "(error)");
	} else if (!strcmp(mode, "ids")) {
		printf("pid=%d ppid=%d\n", getpid(), getppid());
	} else if (!strcmp(mode, "sleep")) {
		msleep(atoi(argv[2]));
	} else if (!strcmp(mode, "trap")) {
		__builtin_trap();
	} else if (!strcmp(mode, "spin")) {
		if (argc > 2)
			printf("%s\n", argv[2]);
		volatile unsigned long x = 0;
		for (;;)
			x++;
	} else if (!strcmp(mode, "write-later")) {
		msleep(atoi(argv[2]));
		write(1, argv[3], strlen(argv[3]));
	} else if (!strcmp(mode, "pipe")) {
		int p[2];
		if (pipe(p) < 0)
			return 3;
		write(p[1], "hello", 5);
		char buf[16] = {0};
		ssize_t n = read(p[0], buf, sizeof buf - 1);
		printf("read=%zd got=%s\n", n, buf);
		int q[2];
		pipe2(q, O_NONBLOCK);
		n = read(q[0], buf, 1);
		printf("nonblock_read=%zd errno=%d\n", n, errno);
		close(p[1]);
		n = read(p[0], buf, 1);
		printf("eof_read=%zd\n", n);
	} else if (!strcmp(mode, "capture")) {
		int p[2];
		pipe(p);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_addclose(&fa, p[0]);
		pid_t pid = start(argv + 2, &fa);
		posix_spawn_file_actions_destroy(&fa);
		close(p[1]);
		char buf[4096];
		size_t got = 0;
		ssize_t n;
		while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
			got += n;
		buf[got] = 0;
		printf("captured=[%s]\n", buf);
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "status")) {
		describe("child", wait_for(start(argv + 2, NULL)));
	} else if (!strcmp(mode, "spawn-env")) {
		char *av[] = {argv[2], "env", "X", NULL};
		char *ev[] = {"X=from-parent", NULL};
		pid_t pid;
		int e = posix_spawn(&pid, argv[2], NULL, NULL, av, ev);
		if (e)
			return printf("spawn_errno=%d\n", e), 3;
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "spawn-cwd")) {
		char *av[] = {argv[2], "cwd", NULL};
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addchdir_np(&fa, argv[3]);
		describe("child", wait_for(start(av, &fa)));
	} else if (!strcmp(mode, "spawnp")) {
		pid_t pid;
		int e = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
		if (e)
			return printf("spawn_errno=%d\n", e), 0;
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "deny")) {
		char *av[] = {argv[2], NULL};
		pid_t pid;
		printf("spawn_errno=%d\n", posix_spawn(&pid, argv[2], NULL, NULL, av, environ));
	} else if (!strcmp(mode, "orphan")) {
		printf("orphan=%d\n", start(argv + 2, NULL));
	} else if (!strcmp(mode, "kill-child")) {
		char *av[] = {argv[2], argv[4], "60000", NULL};
		pid_t pid = start(av, NULL);
		msleep(200);
		printf("kill=%d\n", kill(pid, atoi(argv[3])));
		describe("child", wait_for(pid));
		printf("kill_after_wait=%d errno=%d\n", kill(pid, 0), errno);
		printf("kill_outside=%d errno=%d\n", kill(1, 0), errno);
	} else if (!strcmp(mode, "kill-parent")) {
		catch(SIGUSR1, 0);
		char *av[] = {argv[2], "signal-parent", NULL};
		describe("signaller", wait_for(start(av, NULL)));
		for (int i = 0; i < 100 && !hits; i++)
			msleep(100);
		printf("parent_hits=%d\n", hits);
	} else if (!strcmp(mode, "signal-parent")) {
		errno = 0;
		int r = kill(getppid(), SIGUSR1);
		printf("kill_parent=%d errno=%d\n", r, errno);
	} else if (!strcmp(mode, "wnohang")) {
		char *av[] = {argv[2], "sleep", "300", NULL};
		int status = 0;
		pid_t pid = start(av, NULL);
		printf("early=%d\n", waitpid(pid, &status, WNOHANG));
		describe("child", wait_for(pid));
		printf("none_left=%d errno=%d\n", waitpid(-1, &status, WNOHANG), errno);
	} else if (!strcmp(mode, "ids-child")) {
		printf("parent_pid=%d\n", getpid());
		char *av[] = {argv[2], "ids", NULL};
		describe("child", wait_for(start(av, NULL)));
	} else if (!strcmp(mode, "raise")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_info;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGUSR1, &sa, NULL);
		raise(SIGUSR1);
		printf("handled=%d\n", sigs_seen[SIGUSR1]);
		signal(SIGUSR2, SIG_IGN);
		raise(SIGUSR2);
		printf("ignored_alive=1\n");
	} else if (!strcmp(mode, "mask")) {
		catch(SIGUSR1, 0);
		sigset_t set, pending;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		raise(SIGUSR1);
		sigpending(&pending);
		printf("blocked_hits=%d pending=%d\n", hits, sigismember(&pending, SIGUSR1));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		printf("unblocked_hits=%d\n", hits);
		/* A blocked signal with the default action waits too. */
		signal(SIGUSR2, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		sigprocmask(SIG_BLOCK, &set, NULL);
		raise(SIGUSR2);
		printf("default_blocked_alive=1\n");
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		printf("not reached\n");
	} else if (!strcmp(mode, "alarm")) {
		catch(SIGALRM, 0);
		alarm(1);
		int r = pause();
		printf("pause=%d errno=%d hits=%d\n", r, errno, hits);
	} else if (!strcmp(mode, "alarm-default")) {
		alarm(1);
		msleep(10000);
		printf("not reached\n");
	} else if (!strcmp(mode, "itimer")) {
		struct itimerval it = {{0, 500000}, {5, 0}}, old, now;
		setitimer(ITIMER_REAL, &it, NULL);
		getitimer(ITIMER_REAL, &now);
		printf("value_s=%ld interval_us=%ld\n", (long)now.it_value.tv_sec + (now.it_value.tv_usec > 0), (long)now.it_interval.tv_usec);
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, &old);
		getitimer(ITIMER_REAL, &now);
		printf("old_interval_us=%ld disarmed=%d\n", (long)old.it_interval.tv_usec, now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0);
		printf("alarm_left=%u\n", (alarm(30), alarm(0)));
	} else if (!strcmp(mode, "eintr") || !strcmp(mode, "restart")) {
		int restart = !strcmp(mode, "restart");
		int p[2];
		pipe(p);
		catch(SIGALRM, restart ? SA_RESTART : 0);
		char *av[] = {argv[2], "write-later", "1500", "x", NULL};
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		pid_t pid = start(av, &fa);
		struct itimerval it = {{0, 200000}, {0, 200000}};
		setitimer(ITIMER_REAL, &it, NULL);
		char c = 0;
		ssize_t n = read(p[0], &c, 1);
		int err = errno;
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
		printf("read=%zd errno=%d got=%c hits_pos=%d\n", n, n < 0 ? err : 0, c ? c : '-', hits > 0);
		kill(pid, SIGKILL);
		wait_for(pid);
	} else if (!strcmp(mode, "sigpipe") || !strcmp(mode, "sigpipe-ignored")) {
		if (!strcmp(mode, "sigpipe-ignored"))
			signal(SIGPIPE, SIG_IGN);
		int p[2];
		pipe(p);
		close(p[0]);
		ssize_t n = write(p[1], "x", 1);
		printf("write=%zd errno=%d\n", n, errno);
	} else if (!strcmp(mode, "sigchld")) {
		catch(SIGCHLD, 0);
		char *av[] = {argv[2], "exit", "0", NULL};
		pid_t pid = start(av, NULL);
		for (int i = 0; i < 100 && !hits; i++)
			msleep(100);
		printf("sigchld_hits=%d\n", hits);
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "poll")) {
		int p[2];
		pipe(p);
		char *av[] = {argv[2], "write-later", "300", "y", NULL};
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		pid_t pid = start(av, &fa);
		struct pollfd pfd = {p[0], POLLIN, 0};
		int early = poll(&pfd, 1, 0);
		int r = poll(&pfd, 1, 10000);
		char c = 0;
		read(p[0], &c, 1);
		printf("early=%d poll=%d revents_in=%d got=%c\n", early, r, (pfd.revents & POLLIN) != 0, c);
		describe("child", wait_for(pid));
		close(p[1]);
		r = poll(&pfd, 1, 10000);
		printf("hangup=%d\n", r == 1 && (pfd.revents & (POLLHUP | POLLIN)));
	} else if (!strcmp(mode, "spawn-loop")) {
		char *av[] = {argv[2], "sleep", "60000", NULL};
		int n = 0;
		pid_t pid;
		int e;
		while ((e = posix_spawn(&pid, argv[2], NULL, NULL, av, environ)) == 0 && n < 1000)
			n++;
		printf("spawned=%d errno=%d\n", n, e);
	} else if (!strcmp(mode, "spawn-seq")) {
		int n = atoi(argv[3]);
		for (int i = 0; i < n; i++) {
			char code[16];
			snprintf(code, sizeof code, "%d", i);
			char *av[] = {argv[2], "exit", code, NULL};
			printf("child%d=%#x\n", i, wait_for(start(av, NULL)));
		}
	} else if (!strcmp(mode, "fork-seq")) {
		int n = atoi(argv[2]);
		for (int i = 0; i < n; i++) {
			pid_t pid = vkposix_fork(exit_with, (void *)(long)i);
			if (pid < 0)
				return printf("fork errno=%d\n", errno), 3;
			printf("child%d=%#x\n", i, wait_for(pid));
		}
	} else if (!strcmp(mode, "end-children")) {
		char *once[] = {argv[2], "exit", "0", NULL};
		wait_for(start(once, NULL));
		wait_for(start(once, NULL));
		printf("tree_pid=%d\n", getpid());
		fflush(stdout);
		char *chain[] = {argv[2], "tree", argv[2], "1", "spin", NULL};
		printf("chain=%#x\n", wait_for(start(chain, NULL)));
		pid_t pid;
		printf("spawn_errno=%d\n", posix_spawn(&pid, argv[2], NULL, NULL, once, environ));
	} else if (!strcmp(mode, "tree")) {
		int depth = atoi(argv[3]);
		printf("tree_pid=%d\n", getpid());
		if (depth > 0) {
			char d[16];
			snprintf(d, sizeof d, "%d", depth - 1);
			char *av[] = {argv[2], "tree", argv[2], d, argc > 4 ? argv[4] : "sleep", NULL};
			wait_for(start(av, NULL));
		} else {
			printf("leaf\n");
			if (argc > 4 && !strcmp(argv[4], "spin"))
				for (volatile unsigned long x = 0;; x++)
					;
			msleep(60000);
		}
	} else if (!strcmp(mode, "fork")) {
		pipe(fork_pipe);
		pipe(go_pipe);
		parent_pid = getpid();
		shared_value = 2;
		char arg[] = "stack-arg";
		pid_t pid = vkposix_fork(fork_child, arg);
		shared_value = 3; /* after the call: the child must not see it */
		strcpy(arg, "changed!!");
		if (pid < 0)
			return printf("fork errno=%d\n", errno), 3;
		write(go_pipe[1], "g", 1);
		char buf[128] = {0};
		ssize_t n = read(fork_pipe[0], buf, sizeof buf - 1);
		printf("from_child=[%.*s] parent_value=%d\n", (int)(n > 0 ? n : 0), buf, shared_value);
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "fork-loop")) {
		int n = 0;
		pid_t pid;
		while ((pid = vkposix_fork(sleeper, "60000")) > 0 && n < 1000)
			n++;
		printf("forked=%d errno=%d\n", n, pid < 0 ? errno : 0);
	} else if (!strcmp(mode, "fork-heap")) {
		heap_len = (size_t)atoi(argv[2]) << 20;
		heap = malloc(heap_len);
		unsigned long sum = 0;
		for (size_t i = 0; i < heap_len; i += 4096) {
			heap[i] = (unsigned char)(i >> 12);
			sum += heap[i];
		}
		printf("parent_sum=%lu\n", sum);
		pid_t pid = vkposix_fork(sum_heap, NULL);
		if (pid < 0)
			return printf("fork errno=%d\n", errno), 3;
		describe("child", wait_for(pid));
	} else if (!strcmp(mode, "dup")) {
		int p[2];
		pipe(p);
		int a = dup(p[1]);
		int b = fcntl(p[1], F_DUPFD, 20);
		int c = fcntl(p[1], F_DUPFD_CLOEXEC, 30);
		int d = dup2(p[1], 40);
		int e = dup3(p[1], 41, O_CLOEXEC);
		printf("dup_next=%d f_dupfd=%d f_dupfd_cloexec=%d dup2=%d dup3=%d\n", a == p[1] + 1, b, c, d, e);
		int ws[] = {a, b, c, d, e};
		for (int i = 0; i < 5; i++)
			write(ws[i], "x", 1);
		errno = 0;
		int bad = dup(99);
		printf("dup_closed=%d dup_closed_errno=%d", bad, errno);
		errno = 0;
		bad = dup3(a, a, 0);
		printf(" dup3_same=%d dup3_same_errno=%d", bad, errno);
		printf(" dup2_same=%d\n", dup2(a, a));
		/* dup2 replaces: 40 now names the read end, and the write end is
		 * still open through the others. */
		dup2(p[0], 40);
		char buf[16] = {0};
		ssize_t n = read(40, buf, sizeof buf - 1);
		printf("read_via_dup2=%zd got=%s\n", n, buf);
		/* A child writes through its copy of a copy (fd 1 <- b). */
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, b, 1);
		char *args[] = {argv[2], "echo", "child-wrote", NULL};
		pid_t pid = start(args, &fa);
		posix_spawn_file_actions_destroy(&fa);
		describe("child", wait_for(pid));
		int ends[] = {p[1], a, b, c, e}; /* d (40) is the read end now */
		for (int i = 0; i < 5; i++)
			close(ends[i]);
		size_t got = 0;
		while ((n = read(40, buf + got, sizeof buf - 1 - got)) > 0)
			got += n;
		buf[got] = 0;
		printf("child_via_copy=%s", buf);
	} else if (!strcmp(mode, "spawn-mask")) {
		posix_spawnattr_t at;
		posix_spawnattr_init(&at);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		posix_spawnattr_setsigmask(&at, &set);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
		char *args[] = {argv[2], "masked-raise", NULL};
		pid_t pid = -1;
		int e = posix_spawn(&pid, argv[2], NULL, &at, args, environ);
		if (e)
			return printf("spawn_errno=%d\n", e), 3;
		describe("setsigmask", wait_for(pid));
		/* Without the attribute the child inherits the caller's mask. */
		sigprocmask(SIG_BLOCK, &set, NULL);
		e = posix_spawn(&pid, argv[2], NULL, NULL, args, environ);
		if (e)
			return printf("spawn_errno=%d\n", e), 3;
		describe("inherited", wait_for(pid));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		e = posix_spawn(&pid, argv[2], NULL, NULL, args, environ);
		if (e)
			return printf("spawn_errno=%d\n", e), 3;
		describe("unmasked", wait_for(pid));
	} else if (!strcmp(mode, "masked-raise")) {
		sigset_t now;
		sigprocmask(SIG_BLOCK, NULL, &now);
		printf("blocked=%d env=%s\n", sigismember(&now, SIGUSR1), getenv("VKPOSIX_SIGMASK") ? "set" : "unset");
		raise(SIGUSR1);
		printf("alive=1\n");
	} else if (!strcmp(mode, "spawn-umask")) {
		char *args[] = {argv[2], "show-umask", NULL};
		umask(027);
		describe("u027", wait_for(start(args, NULL)));
		umask(022);
		describe("u022", wait_for(start(args, NULL)));
		/* A variable of that name the caller passes is not the child's umask. */
		char *env[] = {"VKPOSIX_UMASK=0777", NULL};
		pid_t pid = -1;
		int e = posix_spawn(&pid, argv[2], NULL, NULL, args, env);
		if (e)
			return printf("spawn_errno=%d\n", e), 3;
		describe("passed", wait_for(pid));
	} else if (!strcmp(mode, "show-umask")) {
		mode_t m = umask(0);
		printf("umask=%o env=%s\n", (unsigned)m, getenv("VKPOSIX_UMASK") ? "set" : "unset");
		/* Applied, not only reported: a new directory gets 0777 less it. */
		char dir[64];
		snprintf(dir, sizeof dir, "/sub/um%d", (int)getpid());
		umask(m);
		mkdir(dir, 0777);
		struct stat st;
		stat(dir, &st);
		printf("mkdir_mode=%o\n", (unsigned)(st.st_mode & 0777));
		rmdir(dir);
	} else if (!strcmp(mode, "sendfile")) {
		int in = open("/sub/sf-in", O_RDWR | O_CREAT | O_TRUNC, 0644);
		write(in, "0123456789abcdef", 16);
		lseek(in, 0, SEEK_SET);
		int out = open("/sub/sf-out", O_RDWR | O_CREAT | O_TRUNC, 0644);
		off_t off = 4;
		printf("offset_sent=%zd\n", sendfile(out, in, &off, 6));
		printf("offset_after=%lld in_pos=%lld\n", (long long)off, (long long)lseek(in, 0, SEEK_CUR));
		lseek(in, 10, SEEK_SET);
		printf("nooff_sent=%zd\n", sendfile(out, in, NULL, 100));
		printf("nooff_in_pos=%lld\n", (long long)lseek(in, 0, SEEK_CUR));
		off = 16;
		printf("eof_sent=%zd\n", sendfile(out, in, &off, 10));
		char buf[32] = {0};
		pread(out, buf, sizeof buf - 1, 0);
		printf("out=%s\n", buf);
		int p[2];
		pipe(p);
		off = 0;
		printf("to_pipe=%zd\n", sendfile(p[1], in, &off, 3));
		memset(buf, 0, sizeof buf);
		read(p[0], buf, 3);
		printf("pipe_got=%s\n", buf);
		ssize_t r = sendfile(out, p[0], NULL, 3);
		printf("from_pipe=%zd from_pipe_errno=%d\n", r, errno);
		off = 0;
		r = sendfile(out, p[0], &off, 3);
		printf("from_pipe_off=%zd from_pipe_off_errno=%d\n", r, errno);
		r = sendfile(out, 99, NULL, 3);
		printf("bad_fd=%zd bad_fd_errno=%d\n", r, errno);
		close(in);
		close(out);
		unlink("/sub/sf-in");
		unlink("/sub/sf-out");
	} else if (!strcmp(mode, "copy")) {
		int in = open("/sub/cp-in", O_RDWR | O_CREAT | O_TRUNC, 0644);
		write(in, "0123456789", 10);
		int out = open("/sub/cp-out", O_RDWR | O_CREAT | O_TRUNC, 0644);
		off_t oi = 2, oo = 1;
		ssize_t r = copy_file_range(in, &oi, out, &oo, 5, 0);
		printf("cfr=%zd cfr_oi=%lld cfr_oo=%lld cfr_in_pos=%lld\n", r, (long long)oi, (long long)oo,
		       (long long)lseek(in, 0, SEEK_CUR));
		lseek(in, 8, SEEK_SET);
		r = copy_file_range(in, NULL, out, NULL, 10, 0);
		printf("cfr_nooff=%zd cfr_out_pos=%lld\n", r, (long long)lseek(out, 0, SEEK_CUR));
		char buf[32] = {0};
		pread(out, buf, sizeof buf - 1, 0);
		printf("cfr_out=%c%s\n", buf[0] ? buf[0] : '_', buf + 1);
		r = copy_file_range(in, NULL, out, NULL, 1, 1);
		printf("cfr_flags=%zd cfr_flags_errno=%d\n", r, errno);
		int p[2];
		pipe(p);
		r = copy_file_range(in, NULL, p[1], NULL, 1, 0);
		printf("cfr_pipe=%zd cfr_pipe_errno=%d\n", r, errno);
		off_t si = 3;
		r = splice(in, &si, p[1], NULL, 6, 0);
		memset(buf, 0, sizeof buf);
		read(p[0], buf, sizeof buf - 1);
		printf("splice_in=%zd splice_si=%lld splice_got=%s\n", r, (long long)si, buf);
		write(p[1], "abcdef", 6);
		off_t so = 2;
		r = splice(p[0], NULL, out, &so, 4, 0);
		memset(buf, 0, sizeof buf);
		pread(out, buf, 6, 0);
		printf("splice_out=%zd splice_so=%lld splice_file=%c%s\n", r, (long long)so, buf[0] ? buf[0] : '_', buf + 1);
		r = splice(in, NULL, out, NULL, 1, 0);
		printf("splice_files=%zd splice_files_errno=%d\n", r, errno);
		r = splice(p[0], &so, out, NULL, 1, 0);
		printf("splice_pipe_off=%zd splice_pipe_off_errno=%d\n", r, errno);
		close(in);
		close(out);
		unlink("/sub/cp-in");
		unlink("/sub/cp-out");
	} else if (!strcmp(mode, "eintr-reader")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_int;
		sigaction(SIGINT, &sa, NULL);
		write(2, "W\n", 2);
		char buf[256];
		for (;;) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n == 0)
				break;
			if (n < 0 && errno != EINTR)
				return 3;
			if (n < 0 || int_hits) {
				for (; int_hits > 0; int_hits--)
					write(2, "$\n", 2);
			}
		}
		signal(SIGINT, SIG_DFL);
		return 0;
	} else if (!strcmp(mode, "eintr-loop")) {
		int runs = atoi(argv[3]), killed = 0;
		for (int i = 0; i < runs; i++) {
			int in[2], err[2];
			pipe(in);
			pipe(err);
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_adddup2(&fa, in[0], 0);
			posix_spawn_file_actions_adddup2(&fa, err[1], 2);
			char *av[] = {argv[2], "eintr-reader", NULL};
			pid_t pid = start(av, &fa);
			posix_spawn_file_actions_destroy(&fa);
			close(in[0]);
			close(err[1]);
			char w[2];
			read(err[0], w, 2);
			write(in[1], "data", 4);
			struct pollfd pfd = {err[0], POLLIN, 0};
			int ready = 0;
			while (!ready) {
				ready = poll(&pfd, 1, 50) > 0;
				kill(pid, SIGINT);
			}
			char line[64];
			read(err[0], line, sizeof line);
			write(in[1], "\n", 1);
			close(in[1]);
			while (read(err[0], line, sizeof line) > 0)
				;
			close(err[0]);
			int status = wait_for(pid);
			if (WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
				killed++;
		}
		printf("runs=%d killed=%d\n", runs, killed);
	} else {
		return 2;
	}
	return 0;
}
