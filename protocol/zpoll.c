/* zpoll.c — see zpoll.h. */
#include "protocol/zpoll.h"

#include <errno.h>
#include <poll.h>

int loom_zpoll(zmq_pollitem_t *it, int n, long timeout_ms)
{
    struct pollfd p[8];
    int ready = 0;
    if (n > 8)
        return zmq_poll(it, n, timeout_ms);
    for (int i = 0; i < n; i++) {
        it[i].revents = 0;
        p[i] = (struct pollfd){.fd = it[i].fd, .events = POLLIN};
        if (!it[i].socket)
            continue;
        int ev = 0;
        size_t len = sizeof ev, fl = sizeof p[i].fd;
        if (zmq_getsockopt(it[i].socket, ZMQ_FD, &p[i].fd, &fl) != 0 ||
            zmq_getsockopt(it[i].socket, ZMQ_EVENTS, &ev, &len) != 0)
            return -1;
        if (ev & ZMQ_POLLIN) {
            it[i].revents = ZMQ_POLLIN;
            ready++;
        }
    }
    int rc = poll(p, (nfds_t)n, ready ? 0 : timeout_ms < 0 ? -1 : (int)timeout_ms);
    if (rc < 0)
        return errno == EINTR ? ready : -1;
    ready = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].revents & (POLLIN | POLLERR | POLLHUP))
            it[i].revents = ZMQ_POLLIN;
        ready += it[i].revents != 0;
    }
    return ready;
}
