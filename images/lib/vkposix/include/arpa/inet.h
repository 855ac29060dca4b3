/* vkposix: wasi-libc's <arpa/inet.h>, plus inet_addr and inet_ntoa, which
 * it hides. The library's inet_pton and inet_ntop take Linux's AF_INET (2)
 * and AF_INET6 (10), as <sys/socket.h> here defines them; wasi-libc's own
 * take its numbers (1 and 2), so a program linking the library gets the
 * library's. */
#ifndef VKPOSIX_ARPA_INET_H
#define VKPOSIX_ARPA_INET_H

#include_next <arpa/inet.h>

#ifdef __cplusplus
extern "C" {
#endif

in_addr_t inet_addr(const char *);
char *inet_ntoa(struct in_addr);

#ifdef __cplusplus
}
#endif

#endif
