/* posix_spawn over vkernel.proc_spawn. The file actions are played in the
 * caller against a model of the child's fd table, since the child is not a
 * copy of the caller that could play them itself: what comes out is the
 * list of {child fd, caller fd} pairs proc_spawn takes, and the child's
 * starting directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

enum { FA_OPEN, FA_CLOSE, FA_DUP2, FA_CHDIR };

struct __vkposix_file_action {
	int op, fd, src, oflag;
	mode_t mode;
	char *path;
};

int posix_spawnattr_init(posix_spawnattr_t *a) {
	memset(a, 0, sizeof *a);
	return 0;
}

int posix_spawnattr_destroy(posix_spawnattr_t *a) {
	(void)a;
	return 0;
}

int posix_spawnattr_setflags(posix_spawnattr_t *a, short flags) {
	if (flags & ~0xff)
		return EINVAL;
	a->__flags = flags;
	return 0;
}

int posix_spawnattr_getflags(const posix_spawnattr_t *restrict a, short *restrict flags) {
	*flags = (short)a->__flags;
	return 0;
}

int posix_spawnattr_setpgroup(posix_spawnattr_t *a, pid_t pg) {
	a->__pgroup = pg;
	return 0;
}

int posix_spawnattr_getpgroup(const posix_spawnattr_t *restrict a, pid_t *restrict pg) {
	*pg = a->__pgroup;
	return 0;
}

int posix_spawnattr_setsigmask(posix_spawnattr_t *restrict a, const sigset_t *restrict m) {
	a->__sigmask = *m;
	return 0;
}

int posix_spawnattr_getsigmask(const posix_spawnattr_t *restrict a, sigset_t *restrict m) {
	*m = a->__sigmask;
	return 0;
}

int posix_spawnattr_setsigdefault(posix_spawnattr_t *restrict a, const sigset_t *restrict d) {
	a->__sigdefault = *d;
	return 0;
}

int posix_spawnattr_getsigdefault(const posix_spawnattr_t *restrict a, sigset_t *restrict d) {
	*d = a->__sigdefault;
	return 0;
}

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa) {
	memset(fa, 0, sizeof *fa);
	return 0;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa) {
	for (int i = 0; i < fa->__count; i++)
		free(fa->__actions[i].path);
	free(fa->__actions);
	memset(fa, 0, sizeof *fa);
	return 0;
}

static int add(posix_spawn_file_actions_t *fa, struct __vkposix_file_action a) {
	if (fa->__count == fa->__cap) {
		int cap = fa->__cap ? 2 * fa->__cap : 8;
		struct __vkposix_file_action *n = realloc(fa->__actions, cap * sizeof *n);
		if (!n) {
			free(a.path);
			return ENOMEM;
		}
		fa->__actions = n;
		fa->__cap = cap;
	}
	fa->__actions[fa->__count++] = a;
	return 0;
}

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *restrict fa, int fd, const char *restrict path,
                                     int oflag, mode_t mode) {
	if (fd < 0)
		return EBADF;
	char *p = strdup(path);
	if (!p)
		return ENOMEM;
	return add(fa, (struct __vkposix_file_action){FA_OPEN, fd, -1, oflag, mode, p});
}

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *fa, int fd) {
	if (fd < 0)
		return EBADF;
	return add(fa, (struct __vkposix_file_action){FA_CLOSE, fd, -1, 0, 0, NULL});
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int src, int fd) {
	if (fd < 0 || src < 0)
		return EBADF;
	return add(fa, (struct __vkposix_file_action){FA_DUP2, fd, src, 0, 0, NULL});
}

int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *restrict fa, const char *restrict path) {
	char *p = strdup(path);
	if (!p)
		return ENOMEM;
	return add(fa, (struct __vkposix_file_action){FA_CHDIR, -1, -1, 0, 0, p});
}

/* join makes path absolute against dir, in out (PATH_MAX). */
static int join(const char *dir, const char *path, char *out) {
	size_t n;
	if (path[0] == '/')
		n = strlen(path) + 1;
	else
		n = strlen(dir) + 1 + strlen(path) + 1;
	if (n > PATH_MAX)
		return ENAMETOOLONG;
	if (path[0] == '/')
		strcpy(out, path);
	else {
		strcpy(out, dir);
		if (out[0] == 0 || out[strlen(out) - 1] != '/')
			strcat(out, "/");
		strcat(out, path);
	}
	return 0;
}

/* The model of the child's fd table: child fd -> caller fd (-1: closed in
 * the child), and whether the child keeps it (not close-on-exec). */
struct slot {
	int child, caller, keep;
};

struct table {
	struct slot *s;
	int n, cap;
	int opened[64]; /* fds opened for FA_OPEN, closed after the spawn */
	int nopened;
};

static struct slot *find(struct table *t, int fd) {
	for (int i = 0; i < t->n; i++)
		if (t->s[i].child == fd)
			return &t->s[i];
	return NULL;
}

static int put(struct table *t, int child, int caller, int keep) {
	struct slot *s = find(t, child);
	if (!s) {
		if (t->n == t->cap) {
			int cap = t->cap ? 2 * t->cap : 8;
			struct slot *n = realloc(t->s, cap * sizeof *n);
			if (!n)
				return ENOMEM;
			t->s = n;
			t->cap = cap;
		}
		s = &t->s[t->n++];
	}
	*s = (struct slot){child, caller, keep};
	return 0;
}

static int open_in_caller(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* source is the caller fd behind child fd fd as the actions left it: a fd
 * the actions did not touch is the caller's own (the child has all of
 * them until exec closes the close-on-exec ones). */
static int source(struct table *t, int fd) {
	struct slot *s = find(t, fd);
	if (s)
		return s->caller;
	return open_in_caller(fd) ? fd : -1;
}

static int play(struct table *t, const posix_spawn_file_actions_t *fa, char *cwd) {
	for (int fd = 0; fd <= 2; fd++)
		if (open_in_caller(fd)) {
			int e = put(t, fd, fd, 1);
			if (e)
				return e;
		}
	for (int i = 0; fa && i < fa->__count; i++) {
		struct __vkposix_file_action *a = &fa->__actions[i];
		int e = 0;
		switch (a->op) {
		case FA_CLOSE:
			e = put(t, a->fd, -1, 0);
			break;
		case FA_DUP2: {
			int src = source(t, a->src);
			if (src < 0)
				return EBADF;
			e = put(t, a->fd, src, 1);
			break;
		}
		case FA_OPEN: {
			char p[PATH_MAX];
			if ((e = join(cwd, a->path, p)))
				return e;
			if (t->nopened == (int)(sizeof t->opened / sizeof t->opened[0]))
				return EMFILE;
			int fd = open(p, a->oflag, a->mode);
			if (fd < 0)
				return errno;
			t->opened[t->nopened++] = fd;
			e = put(t, a->fd, fd, 1);
			break;
		}
		case FA_CHDIR: {
			char p[PATH_MAX];
			struct stat st;
			if ((e = join(cwd, a->path, p)))
				return e;
			if (stat(p, &st) < 0)
				return errno;
			if (!S_ISDIR(st.st_mode))
				return ENOTDIR;
			strcpy(cwd, p);
			break;
		}
		}
		if (e)
			return e;
	}
	return 0;
}

/* pack lays out NUL-terminated strings one after another, then extra if
 * it is not NULL. Strings that begin with skip (when not NULL) are left
 * out. */
/* skipped says whether s starts with one of the n prefixes in skip. */
static int skipped(const char *s, const char *const *skip, int n) {
	for (int j = 0; j < n; j++)
		if (!strncmp(s, skip[j], strlen(skip[j])))
			return 1;
	return 0;
}

/* pack joins the strings of v, NUL-terminated, into one buffer, leaving
 * out those that start with one of the nskip prefixes in skip, and adds the
 * nonempty strings of extra[0..nextra) at the end. */
static char *pack(char *const *v, const char *const *skip, int nskip, const char *const *extra, int nextra,
                  size_t *len) {
	size_t n = 0;
	for (int j = 0; j < nextra; j++)
		if (extra[j] && extra[j][0])
			n += strlen(extra[j]) + 1;
	for (int i = 0; v && v[i]; i++)
		if (!skipped(v[i], skip, nskip))
			n += strlen(v[i]) + 1;
	char *b = malloc(n ? n : 1);
	if (!b)
		return NULL;
	size_t off = 0;
	for (int i = 0; v && v[i]; i++) {
		if (skipped(v[i], skip, nskip))
			continue;
		size_t l = strlen(v[i]) + 1;
		memcpy(b + off, v[i], l);
		off += l;
	}
	for (int j = 0; j < nextra; j++)
		if (extra[j] && extra[j][0]) {
			size_t l = strlen(extra[j]) + 1;
			memcpy(b + off, extra[j], l);
			off += l;
		}
	*len = n;
	return b;
}

/* The child's signal mask travels in the environment (proc_spawn has no
 * argument for it): the parent's mask, or the attributes' with
 * POSIX_SPAWN_SETSIGMASK, as VKPOSIX_SIGMASK_ENV=hex, which the child's
 * start-up applies and removes (wrap.c) before main runs. Nothing is added
 * for an empty mask; a variable of that name the caller passes is dropped. */
static void mask_var(const posix_spawnattr_t *attr, char *out, size_t n) {
	sigset_t mask;
	if (attr && (attr->__flags & POSIX_SPAWN_SETSIGMASK))
		mask = attr->__sigmask;
	else
		sigprocmask(SIG_BLOCK, NULL, &mask);
	out[0] = 0;
	if (mask)
		snprintf(out, n, "%s=%llx", VKPOSIX_SIGMASK_ENV, (unsigned long long)mask);
}

/* __vkposix_umask is the file part's mask (fsmode.c), weak so that a
 * program linking only the process part does not pull the file part in:
 * without it the child keeps the 022 it starts with. */
extern mode_t __vkposix_umask __attribute__((weak));

/* The caller's umask travels like the mask (VKPOSIX_UMASK_ENV=octal), as a
 * native child inherits it across fork and exec; nothing is added for the
 * 022 every process starts with. */
static void umask_var(char *out, size_t n) {
	out[0] = 0;
	if (&__vkposix_umask && __vkposix_umask != 022)
		snprintf(out, n, "%s=%o", VKPOSIX_UMASK_ENV, (unsigned)__vkposix_umask);
}

static int spawn(pid_t *restrict pid, const char *path, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
	char maskvar[64], umaskvar[32];
	mask_var(attr, maskvar, sizeof maskvar);
	umask_var(umaskvar, sizeof umaskvar);
	char cwd[PATH_MAX], abs[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "/");
	int e = join(cwd, path, abs);
	if (e)
		return e;
	struct table t = {0};
	char *args = NULL, *env = NULL;
	uint32_t *pairs = NULL;
	if ((e = play(&t, fa, cwd)))
		goto out;
	size_t alen, elen;
	args = pack(argv, NULL, 0, NULL, 0, &alen);
	static const char *const ours[] = {VKPOSIX_SIGMASK_ENV "=", VKPOSIX_UMASK_ENV "="};
	const char *const extra[] = {maskvar, umaskvar};
	env = pack(envp ? envp : environ, ours, 2, extra, 2, &elen);
	pairs = malloc((t.n ? t.n : 1) * 2 * sizeof *pairs);
	if (!args || !env || !pairs) {
		e = ENOMEM;
		goto out;
	}
	uint32_t n = 0;
	for (int i = 0; i < t.n; i++)
		if (t.s[i].keep && t.s[i].caller >= 0) {
			pairs[2 * n] = t.s[i].child;
			pairs[2 * n + 1] = t.s[i].caller;
			n++;
		}
	uint32_t child = 0;
	e = __vkernel_proc_spawn(abs, strlen(abs), args, alen, env, elen, cwd, strlen(cwd), pairs, n, &child);
	if (!e && pid)
		*pid = (pid_t)child;
out:
	for (int i = 0; i < t.nopened; i++)
		close(t.opened[i]);
	free(t.s);
	free(args);
	free(env);
	free(pairs);
	return e;
}

int posix_spawn(pid_t *restrict pid, const char *restrict path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *restrict attr, char *const argv[restrict], char *const envp[restrict]) {
	/* The child starts with default dispositions, as after exec (ignored
	 * signals are not kept ignored), and the mask (mask_var). */
	return spawn(pid, path, fa, attr, argv, envp);
}

int posix_spawnp(pid_t *restrict pid, const char *restrict file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *restrict attr, char *const argv[restrict], char *const envp[restrict]) {
	if (strchr(file, '/'))
		return spawn(pid, file, fa, attr, argv, envp);
	const char *dirs = getenv("PATH");
	if (!dirs)
		dirs = "/usr/local/bin:/bin:/usr/bin";
	int last = ENOENT;
	for (const char *p = dirs;; p++) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		char cand[PATH_MAX];
		if (dl + 1 + strlen(file) + 1 <= sizeof cand) {
			memcpy(cand, p, dl);
			cand[dl] = 0;
			if (dl == 0)
				strcpy(cand, ".");
			strcat(cand, "/");
			strcat(cand, file);
			struct stat st;
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
				int e = spawn(pid, cand, fa, attr, argv, envp);
				if (e != ENOENT && e != EACCES)
					return e;
				last = e;
			} else if (errno != ENOENT && errno != ENOTDIR) {
				last = errno;
			}
		}
		if (!end)
			return last;
		p = end;
	}
}
