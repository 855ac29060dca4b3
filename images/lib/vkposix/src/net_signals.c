/* The signal hooks of the socket part (socket.c), for the net part alone
 * (libvkposix-net.a): a port that keeps its own signal layer links
 * socket.o and netdb.o without signal.o, whose sigaction and friends would
 * clash with its own. socket.c asks __vkposix_interrupted what to do when
 * a blocking call answers EINTR, and calls vkposix_take_signals after an
 * EPIPE (the host raised SIGPIPE). These defaults are weak: the port
 * defines both to run its own handlers (vkposix_net.h). Without them, an
 * EINTR is returned as it is and the signals stay pending in the host
 * until the port takes them. Not part of libvkposix.a, where signal.c
 * defines both. */
#include "internal.h"

__attribute__((weak)) int __vkposix_interrupted(int restartable) {
	(void)restartable;
	return 0;
}

__attribute__((weak)) int vkposix_take_signals(void) { return 0; }
