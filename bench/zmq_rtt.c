/* zmq_rtt.c — the physical peer of bench-dispatch's chained-step latency:
 * a raw ZeroMQ round trip between two processes on loopback TCP (a DEALER
 * sends a small frame, a ROUTER in a forked child echoes it), as loomd and
 * a worker exchange one task and its result. Prints the p50 and p99 of N
 * sequential round trips and "RESULT zmq_rtt_p50_us=..." for dispatch.sh.
 * Usage: zmq_rtt [N]  (default 20000). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "common/clock.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The echo side: ROUTER bound to a free port it reports through fd `out`,
 * replies [id, frame] to every message until "q" (or 30 s of silence). */
static int echo(int out)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[64] = "";
    size_t len = sizeof ep;
    int idle_ms = 30000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &idle_ms, sizeof idle_ms);
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0 || zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0)
        ep[0] = 0;
    if (write(out, ep, sizeof ep) != (ssize_t)sizeof ep || !ep[0])
        return 1;
    close(out);
    for (;;) {
        zmq_msg_t id, m;
        zmq_msg_init(&id);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&m, s, 0) < 0)
            break;
        int quit = zmq_msg_size(&m) == 1 && *(char *)zmq_msg_data(&m) == 'q';
        zmq_msg_send(&id, s, ZMQ_SNDMORE);
        zmq_msg_send(&m, s, 0);
        if (quit)
            break;
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    if (n < 100 || n > 10000000) {
        fprintf(stderr, "usage: zmq_rtt [N]   (100 <= N <= 10000000)\n");
        return 2;
    }
    /* Fork before any ZeroMQ context exists (a context does not survive a
     * fork); the child binds a free port itself and sends its address back,
     * so no port is given up and re-bound in between. */
    int fds[2];
    char ep[64];
    if (pipe(fds) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(echo(fds[1]));
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], ep, sizeof ep) != (ssize_t)sizeof ep || !ep[0]) {
        fprintf(stderr, "zmq_rtt: the echo process could not bind a port\n");
        return 1;
    }
    close(fds[0]);
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int wait_ms = 30000, linger = 0;
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(d, ep);
    double *rtt = malloc((size_t)n * sizeof *rtt);
    char buf[256], payload[96];
    memset(payload, 'x', sizeof payload); /* about a noop task's size */
    long done = 0;
    for (long i = -1000; i < n && rtt; i++) { /* 1000 warm-up round trips */
        uint64_t t0 = loom_clock_ns();
        if (zmq_send(d, payload, sizeof payload, 0) < 0 || zmq_recv(d, buf, sizeof buf, 0) < 0)
            break;
        if (i >= 0)
            rtt[done++] = (double)(loom_clock_ns() - t0) / 1000.0;
    }
    zmq_send(d, "q", 1, 0);
    zmq_recv(d, buf, sizeof buf, 0);
    zmq_close(d);
    zmq_ctx_term(ctx);
    if (done < n)
        kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (!rtt || done < n) {
        fprintf(stderr, "zmq_rtt: no echo within 30 s after %ld round trips\n", done);
        free(rtt);
        return 1;
    }
    qsort(rtt, (size_t)n, sizeof *rtt, cmp);
    printf("  raw ZeroMQ round trip (DEALER <-> ROUTER echo, 2 processes, loopback TCP): %ld round trips, "
           "p50 %.0f us, p99 %.0f us\n", n, rtt[n / 2], rtt[n * 99 / 100]);
    printf("RESULT zmq_rtt_p50_us=%.1f\n", rtt[n / 2]);
    free(rtt);
    return 0;
}
