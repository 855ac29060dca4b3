/* vkposix: struct sockaddr_un with its sun_path, which wasi-libc's lacks
 * (it has no unix-domain sockets). Found before wasi-libc's header of the
 * same name, which its <sys/un.h> includes. */
#ifndef __wasilibc___struct_sockaddr_un_h
#define __wasilibc___struct_sockaddr_un_h

#define __need_STDDEF_H_misc
#include <stddef.h>

#include <__typedef_sa_family_t.h>

struct sockaddr_un {
	_Alignas(max_align_t) sa_family_t sun_family;
	char sun_path[108];
};

#endif
