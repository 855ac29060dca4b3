/* POSIX sockets over the vkernel's socket calls (vkernel/ABI.md,
 * "Sockets"): socket, socketpair, bind, listen, connect, accept, accept4,
 * getsockname, getpeername, send, recv, sendto, recvfrom, sendmsg,
 * recvmsg, getsockopt, setsockopt, shutdown, sockatmark, gethostname.
 * Constants are Linux's (<sys/socket.h> here), which the host takes as
 * they are; addresses are translated between struct sockaddr and the
 * host's vkaddr. A relative unix socket path is made absolute with the
 * working directory: the host resolves guest paths inside the mounts. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>
#include <wasi/api.h>

#include "internal.h"

#define VK_FDFLAG_NONBLOCK 4

static int fail(int32_t e) {
	errno = e;
	return -1;
}

static void put16(uint8_t *b, uint16_t v) {
	b[0] = v;
	b[1] = v >> 8;
}
static void put32(uint8_t *b, uint32_t v) {
	put16(b, v);
	put16(b + 2, v >> 16);
}
static uint16_t get16(const uint8_t *b) { return b[0] | b[1] << 8; }
static uint32_t get32(const uint8_t *b) { return get16(b) | (uint32_t)get16(b + 2) << 16; }

/* to_vk encodes a struct sockaddr as a vkaddr in out (VKPOSIX_VKADDR_MAX
 * bytes) and returns its length, or -1 with errno. */
static int to_vk(const struct sockaddr *sa, socklen_t len, uint8_t *out) {
	if (!sa || len < sizeof(sa_family_t))
		return fail(EINVAL);
	memset(out, 0, 24);
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		if (len < offsetof(struct sockaddr_in, sin_addr) + sizeof in->sin_addr)
			return fail(EINVAL);
		put16(out, AF_INET);
		put16(out + 2, ntohs(in->sin_port));
		memcpy(out + 8, &in->sin_addr, 4);
		return 24;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (len < offsetof(struct sockaddr_in6, sin6_scope_id) + sizeof in6->sin6_scope_id)
			return fail(EINVAL);
		put16(out, AF_INET6);
		put16(out + 2, ntohs(in6->sin6_port));
		put32(out + 4, in6->sin6_scope_id);
		memcpy(out + 8, &in6->sin6_addr, 16);
		return 24;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (len <= off)
			return fail(EINVAL);
		size_t max = len - off;
		if (max > sizeof un->sun_path)
			max = sizeof un->sun_path;
		size_t n = un->sun_path[0] ? strnlen(un->sun_path, max) : max; /* abstract: every byte */
		char *path = (char *)out + 4;
		size_t at = 0;
		if (n > 0 && un->sun_path[0] != '/' && un->sun_path[0] != 0) {
			/* Relative: the host wants a guest path. */
			if (!getcwd(path, VKPOSIX_VKADDR_MAX - 4))
				return fail(ENAMETOOLONG);
			at = strlen(path);
			if (at > 1)
				path[at++] = '/';
		}
		if (at + n > 108)
			return fail(ENAMETOOLONG);
		memcpy(path + at, un->sun_path, n);
		put16(out, AF_UNIX);
		put16(out + 2, at + n);
		return 4 + at + n;
	}
	case AF_UNSPEC:
		/* connect's way to dissolve a datagram socket's association. */
		put16(out, AF_UNSPEC);
		put16(out + 2, 0);
		return 4;
	}
	return fail(EAFNOSUPPORT);
}

/* from_vk decodes a vkaddr of n bytes into sa, cut to *len bytes, and sets
 * *len to the address's full length (POSIX's truncation rule). */
static void from_vk(const uint8_t *in, uint32_t n, struct sockaddr *sa, socklen_t *len) {
	struct sockaddr_storage ss;
	socklen_t full = 0;
	memset(&ss, 0, sizeof ss);
	uint16_t fam = n >= 2 ? get16(in) : AF_UNSPEC;
	if (fam == AF_INET && n >= 24) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(get16(in + 2));
		memcpy(&a->sin_addr, in + 8, 4);
		full = sizeof *a;
	} else if (fam == AF_INET6 && n >= 24) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(get16(in + 2));
		a->sin6_scope_id = get32(in + 4);
		memcpy(&a->sin6_addr, in + 8, 16);
		full = sizeof *a;
	} else if (fam == AF_UNIX && n >= 4) {
		struct sockaddr_un *a = (struct sockaddr_un *)&ss;
		size_t l = get16(in + 2);
		if (l > sizeof a->sun_path - 1)
			l = sizeof a->sun_path - 1;
		a->sun_family = AF_UNIX;
		memcpy(a->sun_path, in + 4, l);
		/* Linux counts the NUL of a named path; an unnamed one is the
		 * family alone. */
		full = offsetof(struct sockaddr_un, sun_path) + (l ? l + 1 : 0);
	} else {
		ss.ss_family = AF_UNSPEC;
		full = sizeof(sa_family_t);
	}
	if (!sa || !len)
		return;
	memcpy(sa, &ss, *len < full ? *len : full);
	*len = full;
}

/* retry makes a blocking host call again while it answers EINTR and
 * __vkposix_interrupted says Linux restarts it. */
#define RETRY(restartable, call)                                                                                       \
	({                                                                                                             \
		int32_t _e;                                                                                            \
		while ((_e = (call)) == __WASI_ERRNO_INTR && __vkposix_interrupted(restartable))                       \
			;                                                                                              \
		_e;                                                                                                    \
	})

VKPOSIX_WEAK int socket(int domain, int type, int protocol) {
	uint32_t flags = type & SOCK_NONBLOCK ? VK_FDFLAG_NONBLOCK : 0;
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	uint32_t fd;
	int32_t e = __vkernel_sock_open(domain, type, protocol, flags, &fd);
	return e ? fail(e) : (int)fd;
}

VKPOSIX_WEAK int socketpair(int domain, int type, int protocol, int fds[2]) {
	uint32_t flags = type & SOCK_NONBLOCK ? VK_FDFLAG_NONBLOCK : 0;
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (protocol != 0)
		return fail(EPROTONOSUPPORT);
	uint32_t got[2];
	int32_t e = __vkernel_sock_pair(domain, type, flags, got);
	if (e)
		return fail(e);
	fds[0] = got[0];
	fds[1] = got[1];
	return 0;
}

VKPOSIX_WEAK int bind(int fd, const struct sockaddr *sa, socklen_t len) {
	uint8_t a[VKPOSIX_VKADDR_MAX];
	int n = to_vk(sa, len, a);
	if (n < 0)
		return -1;
	int32_t e = __vkernel_sock_bind(fd, a, n);
	return e ? fail(e) : 0;
}

VKPOSIX_WEAK int listen(int fd, int backlog) {
	int32_t e = __vkernel_sock_listen(fd, backlog);
	return e ? fail(e) : 0;
}

VKPOSIX_WEAK int connect(int fd, const struct sockaddr *sa, socklen_t len) {
	uint8_t a[VKPOSIX_VKADDR_MAX];
	int n = to_vk(sa, len, a);
	if (n < 0)
		return -1;
	/* Linux never restarts connect: the connection goes on, and a second
	 * call answers EALREADY. */
	int32_t e = RETRY(0, __vkernel_sock_connect_to(fd, a, n));
	return e ? fail(e) : 0;
}

static int name(int32_t (*call)(uint32_t, void *, uint32_t, uint32_t *), int fd, struct sockaddr *sa,
                socklen_t *len) {
	uint8_t a[VKPOSIX_VKADDR_MAX];
	uint32_t n;
	if (!sa || !len)
		return fail(EFAULT);
	int32_t e = call(fd, a, sizeof a, &n);
	if (e)
		return fail(e);
	from_vk(a, n, sa, len);
	return 0;
}

VKPOSIX_WEAK int getsockname(int fd, struct sockaddr *__restrict sa, socklen_t *__restrict len) {
	return name(__vkernel_sock_getsockname, fd, sa, len);
}

VKPOSIX_WEAK int getpeername(int fd, struct sockaddr *__restrict sa, socklen_t *__restrict len) {
	return name(__vkernel_sock_getpeername, fd, sa, len);
}

VKPOSIX_WEAK int accept4(int fd, struct sockaddr *__restrict sa, socklen_t *__restrict len, int flags) {
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return fail(EINVAL);
	__wasi_fd_t nfd;
	/* Wrapped (wrap.c): handlers run, SA_RESTART restarts. */
	__wasi_errno_t e = __wasi_sock_accept(fd, flags & SOCK_NONBLOCK ? __WASI_FDFLAGS_NONBLOCK : 0, &nfd);
	if (e)
		return fail(e);
	if (sa && len) {
		uint8_t a[VKPOSIX_VKADDR_MAX];
		uint32_t n;
		if (__vkernel_sock_getpeername(nfd, a, sizeof a, &n) != 0) {
			/* The peer is gone already: its family, no address
			 * (never AF_UNSPEC, which servers take for an error). */
			if (__vkernel_sock_getsockname(nfd, a, sizeof a, &n) != 0)
				n = 0;
			memset(a + 2, 0, sizeof a - 2);
			if (n > 4 && get16(a) == AF_UNIX)
				n = 4;
		}
		from_vk(a, n, sa, len);
	}
	return nfd;
}

VKPOSIX_WEAK int accept(int fd, struct sockaddr *__restrict sa, socklen_t *__restrict len) { return accept4(fd, sa, len, 0); }

static ssize_t sendv(int fd, const struct iovec *iov, int iovcnt, int flags, const struct sockaddr *sa,
                     socklen_t salen) {
	uint8_t a[VKPOSIX_VKADDR_MAX];
	int n = 0;
	if (sa && salen > 0) { /* sendmsg's msg_namelen 0: no address */
		n = to_vk(sa, salen, a);
		if (n < 0)
			return -1;
	}
	uint32_t sent;
	int32_t e = RETRY(1, __vkernel_sock_sendto(fd, iov, iovcnt, flags, a, n, &sent));
	if (e == __WASI_ERRNO_PIPE)
		/* The host sent SIGPIPE with EPIPE: a caught one runs now. */
		vkposix_take_signals();
	return e ? fail(e) : (ssize_t)sent;
}

static ssize_t recvv(int fd, const struct iovec *iov, int iovcnt, int flags, struct sockaddr *sa, socklen_t *salen,
                     int *oflags) {
	uint8_t a[VKPOSIX_VKADDR_MAX];
	uint32_t got, alen, of;
	int want = sa && salen;
	int32_t e = RETRY(1, __vkernel_sock_recvfrom(fd, iov, iovcnt, flags, a, want ? sizeof a : 0, &got, &alen, &of));
	if (e)
		return fail(e);
	if (want) {
		if (alen == 0)
			*salen = 0; /* a stream: no address */
		else
			from_vk(a, alen, sa, salen);
	}
	if (oflags)
		*oflags = of;
	return got;
}

VKPOSIX_WEAK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t salen) {
	struct iovec iov = {(void *)buf, n};
	return sendv(fd, &iov, 1, flags, sa, salen);
}

VKPOSIX_WEAK ssize_t send(int fd, const void *buf, size_t n, int flags) { return sendto(fd, buf, n, flags, NULL, 0); }

VKPOSIX_WEAK ssize_t recvfrom(int fd, void *__restrict buf, size_t n, int flags, struct sockaddr *__restrict sa,
                 socklen_t *__restrict salen) {
	struct iovec iov = {buf, n};
	return recvv(fd, &iov, 1, flags, sa, salen, NULL);
}

VKPOSIX_WEAK ssize_t recv(int fd, void *buf, size_t n, int flags) { return recvfrom(fd, buf, n, flags, NULL, NULL); }

VKPOSIX_WEAK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
	if (msg->msg_controllen > 0)
		return fail(EOPNOTSUPP); /* no ancillary data: SCM_RIGHTS cannot pass host fds */
	return sendv(fd, msg->msg_iov, msg->msg_iovlen, flags, msg->msg_name, msg->msg_namelen);
}

VKPOSIX_WEAK ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
	socklen_t len = msg->msg_namelen;
	int of = 0;
	ssize_t n = recvv(fd, msg->msg_iov, msg->msg_iovlen, flags, msg->msg_name, msg->msg_name ? &len : NULL, &of);
	if (n < 0)
		return n;
	if (msg->msg_name)
		msg->msg_namelen = len;
	msg->msg_controllen = 0;
	msg->msg_flags = of;
	return n;
}

VKPOSIX_WEAK int getsockopt(int fd, int level, int optname, void *__restrict val, socklen_t *__restrict len) {
	uint32_t n;
	if (!val || !len)
		return fail(EFAULT);
	int32_t e = __vkernel_sock_getsockopt(fd, level, optname, val, *len, &n);
	if (e)
		return fail(e);
	if (n < *len)
		*len = n;
	return 0;
}

VKPOSIX_WEAK int setsockopt(int fd, int level, int optname, const void *val, socklen_t len) {
	int32_t e = __vkernel_sock_setsockopt(fd, level, optname, val, len);
	return e ? fail(e) : 0;
}

VKPOSIX_WEAK int shutdown(int fd, int how) {
	__wasi_sdflags_t sd;
	switch (how) {
	case SHUT_RD:
		sd = __WASI_SDFLAGS_RD;
		break;
	case SHUT_WR:
		sd = __WASI_SDFLAGS_WR;
		break;
	case SHUT_RDWR:
		sd = __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR;
		break;
	default:
		return fail(EINVAL);
	}
	__wasi_errno_t e = __wasi_sock_shutdown(fd, sd);
	return e ? fail(e) : 0;
}

/* No out-of-band data is ever received (MSG_OOB is refused), so no socket
 * is ever at the mark. */
VKPOSIX_WEAK int sockatmark(int fd) {
	int type;
	socklen_t len = sizeof type;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ? -1 : 0;
}

/* The guest's host name is "localhost", not the host's: guests learn
 * nothing of the machine they run on, runs are the same on every machine,
 * and the name resolves (getaddrinfo) with or without an /etc/hosts. */
VKPOSIX_WEAK int gethostname(char *name, size_t len) {
	static const char host[] = "localhost";
	if (len < sizeof host)
		return fail(ENAMETOOLONG);
	memcpy(name, host, sizeof host);
	return 0;
}
