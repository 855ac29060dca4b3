/* vkposix: a struct sockaddr_storage of Linux's 128 bytes, large enough for
 * every address the library returns, struct sockaddr_un included
 * (wasi-libc's holds 34 bytes). */
#ifndef __wasilibc___struct_sockaddr_storage_h
#define __wasilibc___struct_sockaddr_storage_h

#define __need_STDDEF_H_misc
#include <stddef.h>

#include <__typedef_sa_family_t.h>

struct sockaddr_storage {
	_Alignas(max_align_t) sa_family_t ss_family;
	char __ss_data[126];
};

#endif
