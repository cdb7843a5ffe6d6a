/* zpoll.h — one wait of an event loop over ZeroMQ sockets and plain file
 * descriptors, as zmq_poll() but with fewer system calls.
 *
 * zmq_poll reads every socket's ZMQ_EVENTS, polls without waiting, and
 * when nothing is ready polls again and reads ZMQ_EVENTS again; on a small
 * VM, where a chained step's round trip is mostly system calls, that is a
 * visible share of it. loom_zpoll reads each socket's ZMQ_EVENTS once, then
 * makes one poll() over the sockets' ZMQ_FD and the plain descriptors,
 * without waiting when a socket is already readable.
 *
 * ZMQ_FD is edge-triggered: it becomes readable when the socket has
 * commands to process (a message arriving on an idle pipe is one), so a
 * socket whose ZMQ_FD fired is reported readable and the caller drains it
 * with ZMQ_DONTWAIT receives until EAGAIN (which process the commands).
 * Reading ZMQ_EVENTS right before every wait keeps this correct after
 * sends, which may process (and so swallow the signal of) pending commands.
 * Callers must therefore drain a socket reported readable until EAGAIN, or
 * call loom_zpoll again without waiting. */
#ifndef LOOM_PROTOCOL_ZPOLL_H
#define LOOM_PROTOCOL_ZPOLL_H

#include <zmq.h>

/* items, n (at most 8; more fall back to zmq_poll) and timeout_ms (-1 =
 * forever) as zmq_poll; only ZMQ_POLLIN is watched. Returns the number of
 * items with revents set (0 on EINTR or timeout), or -1 with errno. */
int loom_zpoll(zmq_pollitem_t *items, int n, long timeout_ms);

#endif
