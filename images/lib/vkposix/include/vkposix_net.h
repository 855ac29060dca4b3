/* vkposix's net part alone (libvkposix-net.a, include-net/): the two hooks
 * through which its socket calls reach the signal layer of a port that
 * keeps its own (see README.md, "The net part alone"). Define both to run
 * the port's handlers; the library's defaults are weak. */
#ifndef VKPOSIX_NET_H
#define VKPOSIX_NET_H

#ifdef __cplusplus
extern "C" {
#endif

/* __vkposix_interrupted is called when a blocking socket call (connect,
 * accept, send, recv and their variants) answers EINTR: take the pending
 * signals and run their handlers, then return 1 to make the call again
 * (restartable: Linux would restart it for an SA_RESTART handler) or 0 to
 * return EINTR. */
int __vkposix_interrupted(int restartable);

/* vkposix_take_signals takes the pending signals and runs their handlers;
 * called after EPIPE (the host raised SIGPIPE with it). Returns how many
 * ran. */
int vkposix_take_signals(void);

#ifdef __cplusplus
}
#endif

#endif
