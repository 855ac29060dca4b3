/* sock: exercises vkposix's sockets (images/lib/vkposix) over the
 * vkernel's socket calls. One mode per run; prints "key=value" lines;
 * "fail=WHAT errno=N" when a step fails.
 *
 *   sock tcp                  loopback echo in one process: listen, connect, accept with the
 *                             peer's address; a non-blocking connect completed with poll
 *   sock udp ADDR             sendto/recvfrom over ADDR (127.0.0.1 or ::1), a reply to the sender
 *   sock unix-server SELF P   bind and listen at the unix path P, spawn SELF unix-client P, accept it
 *   sock unix-client P        connect to P, write a line
 *   sock pair                 socketpair, stream and dgram
 *   sock select               select with the socket in exceptfds too (none is ever reported); a
 *                             closed descriptor in exceptfds is EBADF
 *   sock gai                  getaddrinfo, getnameinfo, gethostname, inet_pton/inet_ntop
 *   sock deny PATH            binds and connects the policy refuses; a unix bind at PATH
 *   sock eintr                a blocking recvfrom cut short by SIGALRM, then restarted (SA_RESTART) until
 *                             the handler's own datagram arrives; poll on a datagram socket */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHECK(what, cond)                                                                                              \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			printf("fail=%s errno=%d\n", what, errno);                                                     \
			exit(1);                                                                                       \
		}                                                                                                      \
	} while (0)

static const char *ntop(const struct sockaddr *sa, char *buf, size_t n) {
	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, n);
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, n);
	snprintf(buf, n, "family-%d", sa->sa_family);
	return buf;
}

static int port_of(const struct sockaddr *sa) {
	return ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
	                                      : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void tcp(void) {
	int l = socket(AF_INET, SOCK_STREAM, 0);
	CHECK("socket", l >= 0);
	int one = 1;
	CHECK("reuseaddr", setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK("bind", bind(l, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK("listen", listen(l, 8) == 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	CHECK("getsockname", getsockname(l, (struct sockaddr *)&ss, &len) == 0);
	char buf[64];
	printf("listen=%s:%s len=%d\n", ntop((struct sockaddr *)&ss, buf, sizeof buf),
	       port_of((struct sockaddr *)&ss) > 0 ? "port" : "zero", (int)len);
	struct sockaddr_in at = *(struct sockaddr_in *)&ss;

	int c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	CHECK("client socket", c >= 0);
	CHECK("connect", connect(c, (struct sockaddr *)&at, sizeof at) == 0);
	CHECK("nodelay", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
	struct sockaddr_storage peer;
	len = sizeof peer;
	int a = accept(l, (struct sockaddr *)&peer, &len);
	CHECK("accept", a >= 0);
	struct sockaddr_storage me;
	socklen_t melen = sizeof me;
	CHECK("client getsockname", getsockname(c, (struct sockaddr *)&me, &melen) == 0);
	printf("accepted_family=%s peer=%s same_port=%d\n", peer.ss_family == AF_INET ? "inet" : "other",
	       ntop((struct sockaddr *)&peer, buf, sizeof buf),
	       port_of((struct sockaddr *)&peer) == port_of((struct sockaddr *)&me));
	CHECK("send", send(c, "ping", 4, 0) == 4);
	char got[16] = {0};
	CHECK("recv", recv(a, got, 4, MSG_WAITALL) == 4);
	CHECK("write back", write(a, "pong", 4) == 4);
	char back[16] = {0};
	CHECK("read back", read(c, back, sizeof back - 1) == 4);
	printf("server_got=%s client_got=%s\n", got, back);
	CHECK("shutdown", shutdown(c, SHUT_WR) == 0);
	printf("eof=%zd\n", recv(a, got, sizeof got, 0));
	close(a);
	close(c);

	/* Non-blocking connect, completed with poll. */
	int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK("nb socket", nb >= 0);
	int r = connect(nb, (struct sockaddr *)&at, sizeof at);
	CHECK("nb connect", r == 0 || errno == EINPROGRESS);
	struct pollfd pfd = {.fd = nb, .events = POLLOUT};
	CHECK("poll", poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLOUT));
	int err = -1;
	len = sizeof err;
	CHECK("so_error", getsockopt(nb, SOL_SOCKET, SO_ERROR, &err, &len) == 0);
	int type = 0;
	len = sizeof type;
	CHECK("so_type", getsockopt(nb, SOL_SOCKET, SO_TYPE, &type, &len) == 0);
	a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	CHECK("accept4", a >= 0);
	char x;
	printf("nb_so_error=%d so_type=%d empty_read=%zd errno=%d\n", err, type, recv(a, &x, 1, 0), errno);
	/* An option the vkernel does not pass on. */
	printf("bindtodevice=%d errno=%d\n", setsockopt(a, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), errno);
}

static void udp(const char *addr) {
	int v6 = strchr(addr, ':') != NULL;
	int fam = v6 ? AF_INET6 : AF_INET;
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		CHECK("pton6", inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1);
		len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		CHECK("pton4", inet_pton(AF_INET, addr, &s4->sin_addr) == 1);
		len = sizeof *s4;
	}
	int srv = socket(fam, SOCK_DGRAM, 0);
	CHECK("socket", srv >= 0);
	CHECK("bind", bind(srv, (struct sockaddr *)&ss, len) == 0);
	CHECK("getsockname", getsockname(srv, (struct sockaddr *)&ss, &len) == 0);
	int cli = socket(fam, SOCK_DGRAM, IPPROTO_UDP);
	CHECK("client", cli >= 0);
	CHECK("sendto", sendto(cli, "datagram", 8, 0, (struct sockaddr *)&ss, len) == 8);
	char buf[64] = {0}, text[64];
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	CHECK("peek", recv(srv, buf, sizeof buf, MSG_PEEK) == 8);
	ssize_t n = recvfrom(srv, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
	CHECK("recvfrom", n == 8);
	printf("got=%s from=%s\n", buf, ntop((struct sockaddr *)&from, text, sizeof text));
	CHECK("reply", sendto(srv, "reply", 5, 0, (struct sockaddr *)&from, flen) == 5);
	memset(buf, 0, sizeof buf);
	struct iovec iov = {buf, sizeof buf - 1};
	struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
	CHECK("recvmsg", recvmsg(cli, &msg, 0) == 5);
	printf("reply=%s reply_from_port_matches=%d\n", buf,
	       port_of((struct sockaddr *)&from) == port_of((struct sockaddr *)&ss));
	printf("nothing=%zd errno=%d\n", recv(cli, buf, 1, MSG_DONTWAIT), errno);
	CHECK("connect", connect(cli, (struct sockaddr *)&ss, len) == 0);
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	CHECK("dissolve", connect(cli, &unspec, sizeof unspec) == 0);
	printf("after_unspec=%zd errno=%d\n", send(cli, "x", 1, 0), errno);
	struct timeval tv = {.tv_usec = 50000};
	CHECK("rcvtimeo", setsockopt(cli, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
	printf("timed_out=%zd errno=%d\n", recv(cli, buf, 1, 0), errno);
}

static void unix_server(const char *self, const char *path) {
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK("socket", l >= 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	unlink(path);
	CHECK("bind", bind(l, (struct sockaddr *)&sun, sizeof sun) == 0);
	CHECK("listen", listen(l, 4) == 0);
	struct sockaddr_un name;
	socklen_t len = sizeof name;
	CHECK("getsockname", getsockname(l, (struct sockaddr *)&name, &len) == 0);
	printf("bound=%s\n", name.sun_path);
	pid_t pid;
	char *av[] = {(char *)self, "unix-client", (char *)path, NULL};
	int e = posix_spawn(&pid, self, NULL, NULL, av, environ);
	CHECK("spawn", e == 0);
	int a = accept(l, NULL, NULL);
	CHECK("accept", a >= 0);
	char buf[64] = {0};
	size_t got = 0;
	for (ssize_t n; got < sizeof buf - 1 && (n = read(a, buf + got, sizeof buf - 1 - got)) > 0;)
		got += n;
	printf("from_child=%s", buf);
	int status;
	CHECK("waitpid", waitpid(pid, &status, 0) == pid);
	printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void unix_client(const char *path) {
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK("socket", c >= 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	CHECK("connect", connect(c, (struct sockaddr *)&sun, sizeof sun) == 0);
	const char line[] = "hello-over-unix\n";
	CHECK("write", write(c, line, sizeof line - 1) == sizeof line - 1);
	close(c);
}

static void pair(void) {
	static const int types[] = {SOCK_STREAM, SOCK_DGRAM};
	for (int i = 0; i < 2; i++) {
		int sv[2];
		CHECK("socketpair", socketpair(AF_UNIX, types[i], 0, sv) == 0);
		char buf[16] = {0};
		CHECK("send", send(sv[0], "abc", 3, 0) == 3);
		CHECK("recv", recv(sv[1], buf, sizeof buf, 0) == 3);
		printf("pair%d=%s\n", types[i], buf);
		/* sendmsg with a name buffer of length 0 sends to the peer;
		 * recvmsg gathers into two buffers. */
		struct sockaddr_storage unused;
		struct iovec out[2] = {{"de", 2}, {"f", 1}}, in[2] = {{buf, 1}, {buf + 1, 8}};
		struct msghdr m = {.msg_name = &unused, .msg_namelen = 0, .msg_iov = out, .msg_iovlen = 2};
		CHECK("sendmsg", sendmsg(sv[1], &m, 0) == 3);
		memset(buf, 0, sizeof buf);
		struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
		CHECK("recvmsg", recvmsg(sv[0], &r, 0) == 3);
		printf("msg%d=%s\n", types[i], buf);
	}
	int sv[2];
	printf("inet_pair=%d errno=%d\n", socketpair(AF_INET, SOCK_STREAM, 0, sv), errno);
}

static void sel(void) {
	int sv[2];
	CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fd_set r, e;
	struct timeval tv = {0, 0};
	FD_ZERO(&r);
	FD_ZERO(&e);
	FD_SET(sv[0], &r);
	FD_SET(sv[0], &e);
	int n = select(sv[0] + 1, &r, NULL, &e, &tv);
	printf("idle=%d errno=%d\n", n, n < 0 ? errno : 0);
	CHECK("send", send(sv[1], "x", 1, 0) == 1);
	FD_ZERO(&r);
	FD_ZERO(&e);
	FD_SET(sv[0], &r);
	FD_SET(sv[0], &e);
	tv = (struct timeval){1, 0};
	n = select(sv[0] + 1, &r, NULL, &e, &tv);
	printf("ready=%d readable=%d exceptional=%d\n", n, FD_ISSET(sv[0], &r), FD_ISSET(sv[0], &e));
	CHECK("close", close(sv[1]) == 0);
	FD_ZERO(&e);
	FD_SET(sv[1], &e);
	tv = (struct timeval){0, 0};
	n = select(sv[1] + 1, NULL, NULL, &e, &tv);
	printf("closed=%d errno=%d\n", n, errno);
}

static void gai(void) {
	char name[64];
	CHECK("gethostname", gethostname(name, sizeof name) == 0);
	printf("hostname=%s\n", name);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int e = getaddrinfo("localhost", "80", &hints, &res);
	CHECK("gai localhost", e == 0);
	printf("localhost=");
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char buf[64];
		printf("%s/%d/%d,", ntop(ai->ai_addr, buf, sizeof buf), port_of(ai->ai_addr), ai->ai_protocol);
	}
	printf("\n");
	freeaddrinfo(res);
	hints = (struct addrinfo){.ai_flags = AI_PASSIVE, .ai_family = AF_INET6, .ai_socktype = SOCK_DGRAM};
	CHECK("gai passive", getaddrinfo(NULL, "8080", &hints, &res) == 0);
	char buf[64];
	printf("passive=%s/%d\n", ntop(res->ai_addr, buf, sizeof buf), port_of(res->ai_addr));
	freeaddrinfo(res);
	hints = (struct addrinfo){.ai_flags = AI_CANONNAME, .ai_family = AF_INET};
	e = getaddrinfo("testhost", NULL, &hints, &res);
	printf("testhost_errno=%d", e);
	if (e == 0) {
		printf(" testhost=%s canon=%s", ntop(res->ai_addr, buf, sizeof buf), res->ai_canonname);
		freeaddrinfo(res);
	}
	printf("\n");
	e = getaddrinfo("nowhere.invalid", "80", NULL, &res);
	printf("nowhere=%d %s\n", e, e == EAI_NONAME ? "EAI_NONAME" : gai_strerror(e));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(22), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char host[64], serv[16];
	CHECK("getnameinfo", getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv,
	                                 NI_NUMERICSERV) == 0);
	printf("nameinfo=%s:%s\n", host, serv);
	hints = (struct addrinfo){.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	CHECK("gai service", getaddrinfo("localhost", "http", &hints, &res) == 0);
	printf("http_port=%d\n", port_of(res->ai_addr));
	freeaddrinfo(res);
	hints = (struct addrinfo){.ai_family = AF_INET6, .ai_flags = AI_V4MAPPED};
	CHECK("gai mapped", getaddrinfo("testhost", NULL, &hints, &res) == 0);
	printf("testhost_mapped=%s\n", ntop(res->ai_addr, buf, sizeof buf));
	freeaddrinfo(res);
	sin.sin_port = htons(80);
	CHECK("getnameinfo service", getnameinfo((struct sockaddr *)&sin, sizeof sin, NULL, 0, serv, sizeof serv, 0) == 0);
	printf("service=%s\n", serv);
	struct hostent *h = gethostbyname("testhost");
	printf("hostent=%s/%s\n", h ? h->h_name : "(null)", h ? inet_ntoa(*(struct in_addr *)h->h_addr_list[0]) : "-");
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	h = gethostbyaddr(&lo, sizeof lo, AF_INET);
	printf("byaddr=%s\n", h ? h->h_name : "(null)");
	unsigned char a6[16];
	CHECK("pton mapped", inet_pton(AF_INET6, "::ffff:127.0.0.1", a6) == 1);
	printf("mapped=%s\n", inet_ntop(AF_INET6, a6, buf, sizeof buf));
	CHECK("pton v6", inet_pton(AF_INET6, "2001:db8:0:0:1:0:0:1", a6) == 1);
	printf("v6=%s bad=%d\n", inet_ntop(AF_INET6, a6, buf, sizeof buf), inet_pton(AF_INET, "1.2.3", a6));
}

static void deny(const char *path) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	CHECK("socket", s >= 0);
	struct sockaddr_in any = {.sin_family = AF_INET};
	printf("bind_any=%d errno=%d\n", bind(s, (struct sockaddr *)&any, sizeof any), errno);
	struct sockaddr_in far = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &far.sin_addr);
	printf("bind_far=%d errno=%d\n", bind(s, (struct sockaddr *)&far, sizeof far), errno);
	printf("connect_far=%d errno=%d\n", connect(s, (struct sockaddr *)&far, sizeof far), errno);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	printf("sendto_far=%zd errno=%d\n", sendto(u, "x", 1, 0, (struct sockaddr *)&far, sizeof far), errno);
	int x = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	printf("unix_bind=%d errno=%d\n", bind(x, (struct sockaddr *)&sun, sizeof sun), errno);
	printf("raw=%d errno=%d\n", socket(AF_INET, SOCK_RAW, 0), errno);
}

static volatile int alarms;
static int alarm_sock = -1;
static struct sockaddr_in alarm_to;

static void on_alarm(int sig) {
	(void)sig;
	alarms++;
	if (alarm_sock >= 0)
		sendto(alarm_sock, "late", 4, 0, (struct sockaddr *)&alarm_to, sizeof alarm_to);
}

static void eintr(void) {
	int srv = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK("socket", srv >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK("bind", bind(srv, (struct sockaddr *)&sin, sizeof sin) == 0);
	socklen_t len = sizeof alarm_to;
	CHECK("getsockname", getsockname(srv, (struct sockaddr *)&alarm_to, &len) == 0);
	struct pollfd pfd = {.fd = srv, .events = POLLIN};
	printf("idle_poll=%d\n", poll(&pfd, 1, 50));

	struct sigaction sa = {.sa_handler = on_alarm};
	CHECK("sigaction", sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval it = {.it_value = {.tv_usec = 50000}};
	CHECK("setitimer", setitimer(ITIMER_REAL, &it, NULL) == 0);
	char buf[16] = {0};
	ssize_t n = recvfrom(srv, buf, sizeof buf, 0, NULL, NULL);
	printf("interrupted=%zd errno=%d alarms=%d\n", n, errno, alarms);

	alarm_sock = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sa_flags = SA_RESTART;
	CHECK("sigaction restart", sigaction(SIGALRM, &sa, NULL) == 0);
	CHECK("setitimer again", setitimer(ITIMER_REAL, &it, NULL) == 0);
	n = recvfrom(srv, buf, sizeof buf - 1, 0, NULL, NULL);
	printf("restarted=%zd got=%s alarms=%d\n", n, buf, alarms);
	CHECK("send for poll", sendto(alarm_sock, "x", 1, 0, (struct sockaddr *)&alarm_to, sizeof alarm_to) == 1);
	printf("ready_poll=%d revents_in=%d\n", poll(&pfd, 1, 5000), (pfd.revents & POLLIN) != 0);
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *mode = argv[1];
	if (!strcmp(mode, "tcp"))
		tcp();
	else if (!strcmp(mode, "udp") && argc > 2)
		udp(argv[2]);
	else if (!strcmp(mode, "unix-server") && argc > 3)
		unix_server(argv[2], argv[3]);
	else if (!strcmp(mode, "unix-client") && argc > 2)
		unix_client(argv[2]);
	else if (!strcmp(mode, "pair"))
		pair();
	else if (!strcmp(mode, "select"))
		sel();
	else if (!strcmp(mode, "gai"))
		gai();
	else if (!strcmp(mode, "deny") && argc > 2)
		deny(argv[2]);
	else if (!strcmp(mode, "eintr"))
		eintr();
	else
		return 2;
	return 0;
}
