/* A numeric-only resolver for wasm32-wasi (there is no DNS here): IP
 * literals, "localhost" and the passive wildcard. */
#ifndef COMPAT_NETDB_H
#define COMPAT_NETDB_H
#include <sys/socket.h>
#include <netinet/in.h>
struct addrinfo {
    int ai_flags, ai_family, ai_socktype, ai_protocol;
    socklen_t ai_addrlen;
    struct sockaddr *ai_addr;
    char *ai_canonname;
    struct addrinfo *ai_next;
};
#define AI_PASSIVE 0x01
#define AI_CANONNAME 0x02
#define AI_NUMERICHOST 0x04
#define AI_NUMERICSERV 0x400
#define EAI_NONAME -2
#define EAI_FAMILY -6
#define EAI_MEMORY -10
#define EAI_SYSTEM -11
#define NI_MAXHOST 1025
#define NI_MAXSERV 32
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void freeaddrinfo(struct addrinfo *ai);
const char *gai_strerror(int err);
#endif
