/* ae backend for wasm32-wasi on the vkernel: WASI preview1 poll_oneoff.
 *
 * Each call subscribes to every registered fd (fd_read / fd_write) plus one
 * relative monotonic clock for the timeout. The vkernel's poll_oneoff is
 * backed by epoll and returns the ready fds in arrival order; fired[] keeps
 * that order (the Redis test suite depends on it: a client that wrote first
 * is served first). A read and a write event for the same fd are merged
 * into one fired entry at the position of the first, as epoll does.
 *
 * Copied into src/ by images/redis/build-wasm.sh and included by ae.c. */

#include <wasi/api.h>

typedef struct aeApiState {
    int *masks;                       /* per fd: AE_READABLE|AE_WRITABLE subscribed */
    int *slot;                        /* per fd: index into fired[] during one poll, or -1 */
    __wasi_subscription_t *subs;      /* 2 per fd + the clock */
    __wasi_event_t *events;
    int setsize;
} aeApiState;

static int aeApiAlloc(aeApiState *state, int setsize) {
    int *masks = zrealloc(state->masks, sizeof(int) * setsize);
    int *slot = zrealloc(state->slot, sizeof(int) * setsize);
    state->masks = masks;
    state->slot = slot;
    state->subs = zrealloc(state->subs, sizeof(__wasi_subscription_t) * (2 * (size_t)setsize + 1));
    state->events = zrealloc(state->events, sizeof(__wasi_event_t) * (2 * (size_t)setsize + 1));
    for (int i = state->setsize; i < setsize; i++) {
        masks[i] = AE_NONE;
        slot[i] = -1;
    }
    state->setsize = setsize;
    return 0;
}

static int aeApiCreate(aeEventLoop *eventLoop) {
    aeApiState *state = zcalloc(sizeof(aeApiState));
    if (aeApiAlloc(state, eventLoop->setsize) == -1) return -1;
    eventLoop->apidata = state;
    return 0;
}

static int aeApiResize(aeEventLoop *eventLoop, int setsize) {
    return aeApiAlloc(eventLoop->apidata, setsize);
}

static void aeApiFree(aeEventLoop *eventLoop) {
    aeApiState *state = eventLoop->apidata;
    zfree(state->masks);
    zfree(state->slot);
    zfree(state->subs);
    zfree(state->events);
    zfree(state);
}

static int aeApiAddEvent(aeEventLoop *eventLoop, int fd, int mask) {
    aeApiState *state = eventLoop->apidata;
    if (fd < 0 || fd >= state->setsize) return -1;
    state->masks[fd] |= mask & (AE_READABLE | AE_WRITABLE);
    return 0;
}

static void aeApiDelEvent(aeEventLoop *eventLoop, int fd, int delmask) {
    aeApiState *state = eventLoop->apidata;
    if (fd < 0 || fd >= state->setsize) return;
    state->masks[fd] &= ~delmask;
}

static int aeApiPoll(aeEventLoop *eventLoop, struct timeval *tvp) {
    aeApiState *state = eventLoop->apidata;
    __wasi_size_t nsubs = 0, nevents = 0;
    int numevents = 0;

    for (int fd = 0; fd <= eventLoop->maxfd && fd < state->setsize; fd++) {
        int m = state->masks[fd];
        if (m & AE_READABLE) {
            __wasi_subscription_t *s = &state->subs[nsubs++];
            s->userdata = (__wasi_userdata_t)fd << 1;
            s->u.tag = __WASI_EVENTTYPE_FD_READ;
            s->u.u.fd_read.file_descriptor = fd;
        }
        if (m & AE_WRITABLE) {
            __wasi_subscription_t *s = &state->subs[nsubs++];
            s->userdata = ((__wasi_userdata_t)fd << 1) | 1;
            s->u.tag = __WASI_EVENTTYPE_FD_WRITE;
            s->u.u.fd_write.file_descriptor = fd;
        }
    }
    if (tvp != NULL || nsubs == 0) {
        /* With nothing to wait for and no timeout, sleep in long slices. */
        __wasi_timestamp_t ns = tvp ? (__wasi_timestamp_t)tvp->tv_sec * 1000000000ull +
                                      (__wasi_timestamp_t)tvp->tv_usec * 1000ull
                                    : 3600ull * 1000000000ull;
        __wasi_subscription_t *s = &state->subs[nsubs++];
        s->userdata = ~(__wasi_userdata_t)0;
        s->u.tag = __WASI_EVENTTYPE_CLOCK;
        s->u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
        s->u.u.clock.timeout = ns;
        s->u.u.clock.precision = 0;
        s->u.u.clock.flags = 0;
    }

    /* A caught signal (SIGTERM: shut down) cuts a wait short with EINTR,
     * after vkposix (which wraps __wasi_poll_oneoff) has run its handler,
     * as a native process does on return from epoll_wait. A poll that
     * returns events does not answer EINTR, though a signal may have come
     * meanwhile: take it now too. Natively the handler would have run on
     * arrival; a server busy loading an RDB polls only between chunks
     * (processEventsWhileBlocked) with data always ready, and would
     * otherwise never see its SIGTERM. */
    __wasi_errno_t err = __wasi_poll_oneoff(state->subs, state->events, nsubs, &nevents);
    vkposix_take_signals();
    if (err != 0) {
        if (err == __WASI_ERRNO_INTR) return 0;
        panic("aeApiPoll: poll_oneoff of %u subscriptions: errno %d", (unsigned)nsubs, (int)err);
    }
    for (__wasi_size_t i = 0; i < nevents; i++) {
        __wasi_event_t *e = &state->events[i];
        if (e->type == __WASI_EVENTTYPE_CLOCK) continue;
        int fd = (int)(e->userdata >> 1);
        /* An error (a closed or reset socket) wakes both directions, as
         * EPOLLERR/EPOLLHUP do, so that the handler sees it. */
        if (fd < 0 || fd >= state->setsize) continue;
        int mask = (e->userdata & 1) ? AE_WRITABLE : AE_READABLE;
        if (e->error != 0) mask |= state->masks[fd];
        if (state->slot[fd] >= 0) {
            eventLoop->fired[state->slot[fd]].mask |= mask;
        } else {
            state->slot[fd] = numevents;
            eventLoop->fired[numevents].fd = fd;
            eventLoop->fired[numevents].mask = mask;
            numevents++;
        }
    }
    for (int j = 0; j < numevents; j++) state->slot[eventLoop->fired[j].fd] = -1;
    return numevents;
}

static char *aeApiName(void) {
    return "wasi-poll";
}
