/* setjmp/longjmp for wasm32-wasi guests of the vkernel: WebAssembly cannot
 * unwind its own stack, so the host saves and restores it (vkernel ABI:
 * vkernel.setjmp / vkernel.longjmp). The module must be linked with
 * --export=__stack_pointer. The jmp_buf's address is the key the host
 * saves the state under. */
#ifndef COMPAT_SETJMP_H
#define COMPAT_SETJMP_H

typedef struct { int compat_unused; } jmp_buf[1];

__attribute__((import_module("vkernel"), import_name("setjmp"), returns_twice))
int compat_vk_setjmp(void *env);
__attribute__((import_module("vkernel"), import_name("longjmp"), noreturn))
void compat_vk_longjmp(void *env, int val);

#define setjmp(env) compat_vk_setjmp(env)
#define longjmp(env, val) compat_vk_longjmp(env, val)
#define _setjmp(env) compat_vk_setjmp(env)
#define _longjmp(env, val) compat_vk_longjmp(env, val)

#endif
