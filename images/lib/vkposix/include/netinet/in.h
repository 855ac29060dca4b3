/* vkposix: wasi-libc's <netinet/in.h>, with the IPPROTO_* numbers it leaves
 * out (Linux's values, as those it keeps). Its <sys/socket.h> is the
 * library's, with Linux's AF_* numbers. */
#ifndef VKPOSIX_NETINET_IN_H
#define VKPOSIX_NETINET_IN_H

#include_next <netinet/in.h>

#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#define IPPROTO_IGMP 2
#define IPPROTO_IPIP 4
#define IPPROTO_EGP 8
#define IPPROTO_PUP 12
#define IPPROTO_IDP 22
#define IPPROTO_TP 29
#define IPPROTO_DCCP 33
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_RSVP 46
#define IPPROTO_GRE 47
#define IPPROTO_ESP 50
#define IPPROTO_AH 51
#define IPPROTO_DSTOPTS 60
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define IPPROTO_MAX 263
#endif
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#define IPPROTO_NONE 59
#endif

#endif
