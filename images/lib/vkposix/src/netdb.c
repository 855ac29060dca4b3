/* Names and addresses without DNS: inet_pton, inet_ntop, inet_addr,
 * inet_ntoa with Linux's AF_* numbers; getaddrinfo, getnameinfo and the
 * gethostbyname family over numeric addresses, "localhost", the host name
 * (gethostname) and the guest's /etc/hosts; getservbyname over
 * /etc/services. Nothing here asks the network: a name these do not know
 * is EAI_NONAME (HOST_NOT_FOUND). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

static int hexval(int c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* pton4 parses exactly four dotted decimal parts (inet_pton's form). */
static int pton4(const char *s, unsigned char out[4]) {
	for (int i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)*s))
			return 0;
		int v = 0, digits = 0;
		while (isdigit((unsigned char)*s)) {
			if (digits && v == 0)
				return 0; /* no leading zeros */
			v = v * 10 + (*s++ - '0');
			if (++digits > 3 || v > 255)
				return 0;
		}
		out[i] = v;
		if (i < 3 && *s++ != '.')
			return 0;
	}
	return *s == 0;
}

static int pton6(const char *s, unsigned char out[16]) {
	unsigned char a[16];
	int n = 0, gap = -1;
	if (s[0] == ':') {
		if (s[1] != ':')
			return 0;
		s++;
	}
	while (*s) {
		if (*s == ':') {
			if (gap >= 0)
				return 0;
			gap = n;
			s++;
			if (!*s)
				break;
			continue;
		}
		const char *start = s;
		int v = 0, digits = 0;
		while (hexval(*s) >= 0 && digits < 5) {
			v = v * 16 + hexval(*s++);
			digits++;
		}
		if (*s == '.') {
			/* An IPv4 tail. */
			if (n > 12 || !pton4(start, a + n))
				return 0;
			n += 4;
			break;
		}
		if (digits == 0 || digits > 4 || n > 14)
			return 0;
		a[n++] = v >> 8;
		a[n++] = v;
		if (*s == ':') {
			s++;
			if (!*s)
				return 0;
			if (*s == ':') {
				if (gap >= 0)
					return 0;
				gap = n;
				s++;
			}
		} else if (*s) {
			return 0;
		}
	}
	if (gap < 0 && n != 16)
		return 0;
	if (gap >= 0 && n == 16)
		return 0;
	memset(out, 0, 16);
	if (gap < 0) {
		memcpy(out, a, 16);
	} else {
		memcpy(out, a, gap);
		memcpy(out + 16 - (n - gap), a + gap, n - gap);
	}
	return 1;
}

VKPOSIX_WEAK int inet_pton(int af, const char *__restrict s, void *__restrict dst) {
	if (af == AF_INET)
		return pton4(s, dst);
	if (af == AF_INET6)
		return pton6(s, dst);
	errno = EAFNOSUPPORT;
	return -1;
}

VKPOSIX_WEAK const char *inet_ntop(int af, const void *__restrict src, char *__restrict dst, socklen_t size) {
	char buf[INET6_ADDRSTRLEN];
	const unsigned char *a = src;
	if (af == AF_INET) {
		snprintf(buf, sizeof buf, "%d.%d.%d.%d", a[0], a[1], a[2], a[3]);
	} else if (af == AF_INET6) {
		/* The longest run of two or more zero groups becomes "::". */
		int best = -1, bestlen = 0;
		for (int i = 0; i < 8;) {
			int j = i;
			while (j < 8 && a[2 * j] == 0 && a[2 * j + 1] == 0)
				j++;
			if (j - i > bestlen && j - i >= 2) {
				best = i;
				bestlen = j - i;
			}
			i = j > i ? j : i + 1;
		}
		char *p = buf;
		for (int i = 0; i < 8; i++) {
			if (i == best) {
				*p++ = ':';
				if (i == 0)
					*p++ = ':';
				i += bestlen - 1;
				continue;
			}
			if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && a[10] == 0xff && a[11] == 0xff))) {
				/* ::a.b.c.d and ::ffff:a.b.c.d */
				p += sprintf(p, "%d.%d.%d.%d", a[12], a[13], a[14], a[15]);
				break;
			}
			p += sprintf(p, "%x", a[2 * i] << 8 | a[2 * i + 1]);
			if (i < 7)
				*p++ = ':';
		}
		*p = 0;
	} else {
		errno = EAFNOSUPPORT;
		return NULL;
	}
	if (strlen(buf) >= size) {
		errno = ENOSPC;
		return NULL;
	}
	return strcpy(dst, buf);
}

VKPOSIX_WEAK in_addr_t inet_addr(const char *s) {
	struct in_addr a;
	return inet_aton(s, &a) ? a.s_addr : INADDR_NONE;
}

VKPOSIX_WEAK char *inet_ntoa(struct in_addr in) {
	static char buf[INET_ADDRSTRLEN];
	return (char *)inet_ntop(AF_INET, &in, buf, sizeof buf);
}

VKPOSIX_WEAK const char *gai_strerror(int e) {
	switch (e) {
	case 0:
		return "Success";
	case EAI_BADFLAGS:
		return "Bad value for ai_flags";
	case EAI_NONAME:
		return "Name or service not known";
	case EAI_AGAIN:
		return "Temporary failure in name resolution";
	case EAI_FAIL:
		return "Non-recoverable failure in name resolution";
	case EAI_NODATA:
		return "No address associated with hostname";
	case EAI_FAMILY:
		return "ai_family not supported";
	case EAI_SOCKTYPE:
		return "ai_socktype not supported";
	case EAI_SERVICE:
		return "Servname not supported for ai_socktype";
	case EAI_ADDRFAMILY:
		return "Address family for hostname not supported";
	case EAI_MEMORY:
		return "Memory allocation failure";
	case EAI_SYSTEM:
		return "System error";
	case EAI_OVERFLOW:
		return "Argument buffer overflow";
	}
	return "Unknown error";
}

/* An address found for a name: family and bytes. */
struct addr {
	int family;
	unsigned char bytes[16];
	unsigned scope;
};

#define MAXADDRS 16

/* numeric parses a numeric host: IPv4 in inet_aton's forms, IPv6 with an
 * optional numeric %scope. */
static int numeric(const char *host, struct addr *out) {
	struct in_addr a4;
	if (inet_aton(host, &a4)) {
		out->family = AF_INET;
		memcpy(out->bytes, &a4, 4);
		return 1;
	}
	char buf[INET6_ADDRSTRLEN + 16];
	if (strlen(host) >= sizeof buf)
		return 0;
	strcpy(buf, host);
	char *pct = strchr(buf, '%');
	out->scope = 0;
	if (pct) {
		*pct++ = 0;
		char *end;
		unsigned long v = strtoul(pct, &end, 10);
		if (!*pct || *end)
			return 0;
		out->scope = v;
	}
	if (pton6(buf, out->bytes)) {
		out->family = AF_INET6;
		return 1;
	}
	return 0;
}

/* is_localhost reports whether name is a name of the guest itself. */
static int is_localhost(const char *name) {
	char self[64];
	return !strcasecmp(name, "localhost") || !strcasecmp(name, "localhost.") ||
	       (gethostname(self, sizeof self) == 0 && !strcasecmp(name, self));
}

/* hosts_lookup reads /etc/hosts for name (forward; addr NULL) or for addr
 * (reverse; the first name is copied to canon). It fills up to max
 * addresses of the family (AF_UNSPEC: any) and returns how many. */
static int hosts_lookup(const char *name, const struct addr *rev, int family, struct addr *out, int max, char *canon,
                        size_t canonlen) {
	FILE *f = fopen("/etc/hosts", "r");
	if (!f)
		return 0;
	char line[512];
	int n = 0;
	while (n < max && fgets(line, sizeof line, f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save, *tok = strtok_r(line, " \t\r\n", &save);
		if (!tok)
			continue;
		struct addr a;
		if (!numeric(tok, &a))
			continue;
		if (rev) {
			size_t len = a.family == AF_INET ? 4 : 16;
			if (a.family != rev->family || memcmp(a.bytes, rev->bytes, len) != 0)
				continue;
			char *first = strtok_r(NULL, " \t\r\n", &save);
			if (!first)
				continue;
			snprintf(canon, canonlen, "%s", first);
			n = 1;
			break;
		}
		if (family != AF_UNSPEC && a.family != family)
			continue;
		char *first = strtok_r(NULL, " \t\r\n", &save);
		int match = first && !strcasecmp(first, name);
		for (char *nm; first && !match && (nm = strtok_r(NULL, " \t\r\n", &save));)
			match = !strcasecmp(nm, name);
		if (match) {
			/* The canonical name is the line's first. */
			if (n == 0 && canon)
				snprintf(canon, canonlen, "%s", first);
			out[n++] = a;
		}
	}
	fclose(f);
	return n;
}

/* services_lookup finds a service by name (port -1 on entry) or by port
 * (name NULL) in /etc/services for proto ("tcp", "udp"); it returns the
 * port, or -1, and copies the name when found by port. */
static int services_lookup(const char *name, int port, const char *proto, char *outname, size_t outlen) {
	FILE *f = fopen("/etc/services", "r");
	if (!f)
		return -1;
	char line[512];
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save, *svc = strtok_r(line, " \t\r\n", &save), *pp = strtok_r(NULL, " \t\r\n", &save);
		if (!svc || !pp)
			continue;
		char *slash = strchr(pp, '/');
		if (!slash || (proto && strcmp(slash + 1, proto) != 0))
			continue;
		*slash = 0;
		int p = atoi(pp);
		if (name) {
			int match = !strcmp(svc, name);
			for (char *al; !match && (al = strtok_r(NULL, " \t\r\n", &save));)
				match = !strcmp(al, name);
			if (match)
				found = p;
		} else if (p == port) {
			found = p;
			if (outname)
				snprintf(outname, outlen, "%s", svc);
		}
	}
	fclose(f);
	return found;
}

/* lookup resolves a host name to addresses of family (AF_UNSPEC: both):
 * /etc/hosts first, then the guest's own names as loopback. */
static int lookup(const char *name, int family, struct addr *out, int max, char *canon, size_t canonlen) {
	int n = hosts_lookup(name, NULL, family, out, max, canon, canonlen);
	if (n > 0 || !is_localhost(name))
		return n;
	snprintf(canon, canonlen, "%s", name);
	if (family != AF_INET6) {
		out[n] = (struct addr){.family = AF_INET, .bytes = {127, 0, 0, 1}};
		n++;
	}
	if (family != AF_INET && n < max) {
		out[n] = (struct addr){.family = AF_INET6};
		out[n].bytes[15] = 1;
		n++;
	}
	return n;
}

static struct addrinfo *new_ai(const struct addr *a, int socktype, int port, const char *canon) {
	size_t canonlen = canon ? strlen(canon) + 1 : 0;
	struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6) + canonlen);
	if (!ai)
		return NULL;
	ai->ai_family = a->family;
	ai->ai_socktype = socktype;
	ai->ai_protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : socktype == SOCK_DGRAM ? IPPROTO_UDP : 0;
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a->bytes, 4);
		ai->ai_addrlen = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ai->ai_addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		in6->sin6_scope_id = a->scope;
		memcpy(&in6->sin6_addr, a->bytes, 16);
		ai->ai_addrlen = sizeof *in6;
	}
	if (canon) {
		ai->ai_canonname = (char *)ai->ai_addr + sizeof(struct sockaddr_in6);
		memcpy(ai->ai_canonname, canon, canonlen);
	}
	return ai;
}

VKPOSIX_WEAK void freeaddrinfo(struct addrinfo *ai) {
	while (ai) {
		struct addrinfo *next = ai->ai_next;
		free(ai);
		ai = next;
	}
}

VKPOSIX_WEAK int getaddrinfo(const char *__restrict host, const char *__restrict serv, const struct addrinfo *__restrict hints,
                struct addrinfo **__restrict res) {
	int flags = hints ? hints->ai_flags : 0, family = hints ? hints->ai_family : AF_UNSPEC;
	int socktype = hints ? hints->ai_socktype : 0, protocol = hints ? hints->ai_protocol : 0;
	if (flags & ~(AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG | AI_NUMERICSERV))
		return EAI_BADFLAGS;
	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return EAI_FAMILY;
	if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
		return EAI_SOCKTYPE;
	if (!host && !serv)
		return EAI_NONAME;
	if ((protocol == IPPROTO_TCP && socktype == SOCK_DGRAM) || (protocol == IPPROTO_UDP && socktype == SOCK_STREAM))
		return EAI_SOCKTYPE;
	if (!socktype && protocol == IPPROTO_TCP)
		socktype = SOCK_STREAM;
	if (!socktype && protocol == IPPROTO_UDP)
		socktype = SOCK_DGRAM;

	int port = 0;
	if (serv) {
		char *end;
		long v = strtol(serv, &end, 10);
		if (*serv && !*end) {
			if (v < 0 || v > 65535)
				return EAI_SERVICE;
			port = v;
		} else if (flags & AI_NUMERICSERV) {
			return EAI_NONAME;
		} else {
			port = services_lookup(serv, -1, socktype == SOCK_DGRAM ? "udp" : "tcp", NULL, 0);
			if (port < 0)
				return EAI_SERVICE;
		}
	}

	struct addr addrs[MAXADDRS];
	char canon[256] = "";
	int n = 0;
	if (!host) {
		int passive = flags & AI_PASSIVE;
		if (family != AF_INET6) {
			addrs[n] = (struct addr){.family = AF_INET};
			if (!passive)
				memcpy(addrs[n].bytes, (unsigned char[]){127, 0, 0, 1}, 4);
			n++;
		}
		if (family != AF_INET) {
			addrs[n] = (struct addr){.family = AF_INET6};
			if (!passive)
				addrs[n].bytes[15] = 1;
			n++;
		}
	} else if (numeric(host, &addrs[0])) {
		n = 1;
		snprintf(canon, sizeof canon, "%s", host);
		if (family == AF_INET6 && addrs[0].family == AF_INET) {
			if (!(flags & AI_V4MAPPED))
				return EAI_ADDRFAMILY;
			memmove(addrs[0].bytes + 12, addrs[0].bytes, 4);
			memset(addrs[0].bytes, 0, 10);
			addrs[0].bytes[10] = addrs[0].bytes[11] = 0xff;
			addrs[0].family = AF_INET6;
		} else if (family != AF_UNSPEC && family != addrs[0].family) {
			return EAI_ADDRFAMILY;
		}
	} else if (flags & AI_NUMERICHOST) {
		return EAI_NONAME;
	} else {
		n = lookup(host, family == AF_INET6 && (flags & AI_V4MAPPED) ? AF_UNSPEC : family, addrs, MAXADDRS,
		           canon, sizeof canon);
		if (family == AF_INET6 && (flags & AI_V4MAPPED)) {
			int v6 = 0;
			for (int i = 0; i < n; i++)
				v6 += addrs[i].family == AF_INET6;
			int m = 0;
			for (int i = 0; i < n; i++) {
				if (addrs[i].family == AF_INET6) {
					addrs[m++] = addrs[i];
				} else if (!v6 || (flags & AI_ALL)) {
					struct addr a = {.family = AF_INET6};
					a.bytes[10] = a.bytes[11] = 0xff;
					memcpy(a.bytes + 12, addrs[i].bytes, 4);
					addrs[m++] = a;
				}
			}
			n = m;
		}
		if (n == 0)
			return EAI_NONAME;
	}

	static const int both[] = {SOCK_STREAM, SOCK_DGRAM};
	struct addrinfo *head = NULL, **tail = &head;
	for (int i = 0; i < n; i++) {
		for (int t = 0; t < 2; t++) {
			if (socktype && socktype != both[t])
				continue;
			struct addrinfo *ai = new_ai(&addrs[i], both[t], port, head == NULL && (flags & AI_CANONNAME) ? canon : NULL);
			if (!ai) {
				freeaddrinfo(head);
				return EAI_MEMORY;
			}
			*tail = ai;
			tail = &ai->ai_next;
		}
	}
	*res = head;
	return 0;
}

VKPOSIX_WEAK int getnameinfo(const struct sockaddr *__restrict sa, socklen_t salen, char *__restrict host, socklen_t hostlen,
                char *__restrict serv, socklen_t servlen, int flags) {
	struct addr a = {0};
	int port;
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		a.family = AF_INET;
		memcpy(a.bytes, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		a.family = AF_INET6;
		memcpy(a.bytes, &in6->sin6_addr, 16);
		a.scope = in6->sin6_scope_id;
		port = ntohs(in6->sin6_port);
	} else {
		return EAI_FAMILY;
	}
	if (host && hostlen) {
		char name[256] = "";
		if (!(flags & NI_NUMERICHOST)) {
			static const unsigned char lo6[16] = {[15] = 1};
			if (!hosts_lookup(NULL, &a, a.family, NULL, 1, name, sizeof name) &&
			    ((a.family == AF_INET && a.bytes[0] == 127) ||
			     (a.family == AF_INET6 && !memcmp(a.bytes, lo6, 16))))
				strcpy(name, "localhost");
		}
		if (!name[0]) {
			if (flags & NI_NAMEREQD)
				return EAI_NONAME;
			if (!inet_ntop(a.family, a.bytes, name, sizeof name))
				return EAI_SYSTEM;
			if (a.family == AF_INET6 && a.scope)
				snprintf(name + strlen(name), sizeof name - strlen(name), "%%%u", a.scope);
		}
		if (strlen(name) >= hostlen)
			return EAI_OVERFLOW;
		strcpy(host, name);
	}
	if (serv && servlen) {
		char name[64] = "";
		if (flags & NI_NUMERICSERV ||
		    services_lookup(NULL, port, flags & NI_DGRAM ? "udp" : "tcp", name, sizeof name) < 0)
			snprintf(name, sizeof name, "%d", port);
		if (strlen(name) >= servlen)
			return EAI_OVERFLOW;
		strcpy(serv, name);
	}
	return 0;
}

VKPOSIX_WEAK int h_errno;

VKPOSIX_WEAK const char *hstrerror(int e) {
	switch (e) {
	case HOST_NOT_FOUND:
		return "Unknown host";
	case TRY_AGAIN:
		return "Host name lookup failure";
	case NO_RECOVERY:
		return "Unknown server error";
	case NO_DATA:
		return "No address associated with name";
	}
	return "Resolver internal error";
}

/* The gethostby* results live in one static buffer, as natively. */
static struct {
	struct hostent h;
	char name[256];
	char *aliases[1];
	char *addrs[MAXADDRS + 1];
	unsigned char bytes[MAXADDRS][16];
} hostbuf;

VKPOSIX_WEAK struct hostent *gethostbyname2(const char *name, int af) {
	struct addr a[MAXADDRS];
	int n;
	if (af != AF_INET && af != AF_INET6) {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	hostbuf.name[0] = 0;
	if (numeric(name, &a[0])) {
		n = a[0].family == af;
		snprintf(hostbuf.name, sizeof hostbuf.name, "%s", name);
	} else {
		n = lookup(name, af, a, MAXADDRS, hostbuf.name, sizeof hostbuf.name);
	}
	if (n == 0) {
		h_errno = HOST_NOT_FOUND;
		return NULL;
	}
	int len = af == AF_INET ? 4 : 16;
	for (int i = 0; i < n; i++) {
		memcpy(hostbuf.bytes[i], a[i].bytes, len);
		hostbuf.addrs[i] = (char *)hostbuf.bytes[i];
	}
	hostbuf.addrs[n] = NULL;
	hostbuf.aliases[0] = NULL;
	hostbuf.h = (struct hostent){hostbuf.name, hostbuf.aliases, af, len, hostbuf.addrs};
	return &hostbuf.h;
}

VKPOSIX_WEAK struct hostent *gethostbyname(const char *name) { return gethostbyname2(name, AF_INET); }

VKPOSIX_WEAK struct hostent *gethostbyaddr(const void *addr, socklen_t len, int af) {
	struct sockaddr_in6 ss = {0};
	socklen_t salen;
	if (af == AF_INET && len == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, addr, 4);
		salen = sizeof *in;
	} else if (af == AF_INET6 && len == 16) {
		ss.sin6_family = AF_INET6;
		memcpy(&ss.sin6_addr, addr, 16);
		salen = sizeof ss;
	} else {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	if (getnameinfo((struct sockaddr *)&ss, salen, hostbuf.name, sizeof hostbuf.name, NULL, 0, NI_NAMEREQD) != 0) {
		h_errno = HOST_NOT_FOUND;
		return NULL;
	}
	memcpy(hostbuf.bytes[0], addr, len);
	hostbuf.addrs[0] = (char *)hostbuf.bytes[0];
	hostbuf.addrs[1] = NULL;
	hostbuf.aliases[0] = NULL;
	hostbuf.h = (struct hostent){hostbuf.name, hostbuf.aliases, af, len, hostbuf.addrs};
	return &hostbuf.h;
}

static struct {
	struct servent s;
	char name[64];
	char proto[8];
	char *aliases[1];
} servbuf;

static struct servent *servent(const char *name, int port, const char *proto) {
	snprintf(servbuf.name, sizeof servbuf.name, "%s", name);
	snprintf(servbuf.proto, sizeof servbuf.proto, "%s", proto ? proto : "tcp");
	servbuf.aliases[0] = NULL;
	servbuf.s = (struct servent){servbuf.name, servbuf.aliases, htons(port), servbuf.proto};
	return &servbuf.s;
}

VKPOSIX_WEAK struct servent *getservbyname(const char *name, const char *proto) {
	int port = services_lookup(name, -1, proto, NULL, 0);
	return port < 0 ? NULL : servent(name, port, proto);
}

VKPOSIX_WEAK struct servent *getservbyport(int port, const char *proto) {
	char name[64];
	int p = services_lookup(NULL, ntohs(port), proto, name, sizeof name);
	return p < 0 ? NULL : servent(name, p, proto);
}

static const struct {
	const char *name;
	int proto;
} protos[] = {{"ip", IPPROTO_IP}, {"icmp", IPPROTO_ICMP}, {"tcp", IPPROTO_TCP},       {"udp", IPPROTO_UDP},
              {"ipv6", IPPROTO_IPV6}, {"ipv6-icmp", IPPROTO_ICMPV6}, {"raw", IPPROTO_RAW}};

static struct protoent protobuf;
static char *noaliases[1];

VKPOSIX_WEAK struct protoent *getprotobyname(const char *name) {
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
		if (!strcmp(protos[i].name, name)) {
			protobuf = (struct protoent){(char *)protos[i].name, noaliases, protos[i].proto};
			return &protobuf;
		}
	return NULL;
}

VKPOSIX_WEAK struct protoent *getprotobynumber(int proto) {
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
		if (protos[i].proto == proto) {
			protobuf = (struct protoent){(char *)protos[i].name, noaliases, protos[i].proto};
			return &protobuf;
		}
	return NULL;
}
