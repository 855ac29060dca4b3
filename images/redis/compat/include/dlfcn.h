/* wasm32-wasi cannot load code at run time (and the vkernel forbids it):
 * every dlopen fails, so MODULE LOAD answers with an error. */
#ifndef COMPAT_DLFCN_H
#define COMPAT_DLFCN_H
#define RTLD_LAZY 1
#define RTLD_NOW 2
#define RTLD_LOCAL 0
#define RTLD_GLOBAL 0x100
#define RTLD_NOLOAD 4
#define RTLD_DEEPBIND 8
typedef struct { const char *dli_fname; void *dli_fbase; const char *dli_sname; void *dli_saddr; } Dl_info;
static inline void *dlopen(const char *f, int m) { (void)f; (void)m; return 0; }
static inline void *dlsym(void *h, const char *s) { (void)h; (void)s; return 0; }
static inline int dlclose(void *h) { (void)h; return 0; }
static inline char *dlerror(void) { return (char *)"no dynamic loading in wasm32-wasi"; }
static inline int dladdr(const void *a, Dl_info *i) { (void)a; (void)i; return 0; }
#endif
