/* realpath, which wasi-libc declares but does not define: the absolute
 * path of a file with no ".", ".." or symbolic link in it, every component
 * checked to exist. Links are read with readlink and followed as the
 * kernel would (an absolute link from the root, a relative one from its
 * directory), at most 40 of them (ELOOP, as Linux). Relative paths are
 * relative to getcwd(). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINKS 40

/* Weak: a port's own realpath (nginx keeps one) links without a clash. */
__attribute__((weak)) char *realpath(const char *restrict path, char *restrict resolved) {
	char out[PATH_MAX], rest[PATH_MAX], link[PATH_MAX];
	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	if (!*path) {
		errno = ENOENT;
		return NULL;
	}
	if (path[0] == '/') {
		if (strlen(path) >= sizeof rest)
			goto toolong;
		strcpy(rest, path);
	} else {
		if (!getcwd(rest, sizeof rest))
			return NULL;
		size_t n = strlen(rest);
		if (n + 1 + strlen(path) >= sizeof rest)
			goto toolong;
		rest[n] = '/';
		strcpy(rest + n + 1, path);
	}
	strcpy(out, "/");
	size_t olen = 1;
	int links = 0;
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *end = strchr(p, '/');
		size_t clen = end ? (size_t)(end - p) : strlen(p);
		if (clen == 1 && p[0] == '.') {
			p += clen;
			continue;
		}
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			while (olen > 1 && out[olen - 1] != '/')
				olen--;
			if (olen > 1)
				olen--;
			out[olen] = 0;
			p += clen;
			continue;
		}
		size_t was = olen;
		if (olen + (olen > 1) + clen >= sizeof out)
			goto toolong;
		if (olen > 1)
			out[olen++] = '/';
		memcpy(out + olen, p, clen);
		olen += clen;
		out[olen] = 0;
		p += clen;
		struct stat st;
		if (lstat(out, &st) < 0)
			return NULL;
		if (S_ISLNK(st.st_mode)) {
			if (++links > MAX_LINKS) {
				errno = ELOOP;
				return NULL;
			}
			ssize_t n = readlink(out, link, sizeof link - 1);
			if (n < 0)
				return NULL;
			link[n] = 0;
			/* The link's text, then what was left of the path (which
			 * starts with its '/', if anything is left). */
			size_t left = strlen(p);
			if ((size_t)n + left >= sizeof rest)
				goto toolong;
			memmove(rest + n, p, left + 1);
			memcpy(rest, link, (size_t)n);
			p = rest;
			if (link[0] == '/')
				olen = 1;
			else
				olen = was;
			out[olen] = 0;
			continue;
		}
		if (!S_ISDIR(st.st_mode) && end) { /* "file/" or "file/x" */
			errno = ENOTDIR;
			return NULL;
		}
	}
	if (!resolved) {
		resolved = malloc(olen + 1);
		if (!resolved) {
			errno = ENOMEM;
			return NULL;
		}
	}
	memcpy(resolved, out, olen + 1);
	return resolved;
toolong:
	errno = ENAMETOOLONG;
	return NULL;
}
