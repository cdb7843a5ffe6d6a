/* spool.c — see spool.h. */
#include "workers/common/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char spool_root[PATH_MAX];

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int loom_spool_init(const char *root, loom_err_t *err)
{
    char p[PATH_MAX];
    if (!root || !*root || strlen(root) >= sizeof p - 64)
        return loom_err_set(err, LOOM_EINVAL, "spool directory '%s' is empty or too long",
                            root ? root : "");
    snprintf(p, sizeof p, "%s", root);
    struct stat st;
    if (mkdirs(p) != 0 || stat(p, &st) != 0 || !S_ISDIR(st.st_mode) || access(p, W_OK) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot use spool directory %s: %s", root, strerror(errno));
        loom_err_hint(err, "give a writable directory with --spool-dir (or $LOOM_SPOOL_DIR)");
        return LOOM_EIO;
    }
    snprintf(spool_root, sizeof spool_root, "%s", root);
    return 0;
}

const char *loom_spool_root(void)
{
    return spool_root;
}

void loom_spool_file_name(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (const char *s = in; *s && k + 1 < n; s++)
        out[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'
                       ? *s
                       : '_';
    if (n)
        out[k] = 0;
}

int loom_spool_entry_new(const char *task_id, uint32_t attempt, char *path, size_t n,
                         loom_err_t *err)
{
    if (!spool_root[0])
        return loom_err_set(err, LOOM_EINVAL, "no spool directory");
    char name[200];
    loom_spool_file_name(task_id, name, sizeof name);
    if ((size_t)snprintf(path, n, "%s/%s.%u", spool_root, name, attempt) >= n)
        return loom_err_set(err, LOOM_EINVAL, "spool path too long");
    loom_spool_entry_remove(path); /* a leftover of an earlier process */
    if (mkdir(path, 0700) != 0)
        return loom_err_set(err, LOOM_EIO, "cannot create spool entry %s: %s", path,
                            strerror(errno));
    return 0;
}

void loom_spool_entry_remove(const char *entry)
{
    DIR *d = opendir(entry);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(entry);
}

void loom_spool_remove_all(void)
{
    if (!spool_root[0])
        return;
    DIR *d = opendir(spool_root);
    if (!d)
        return;
    struct dirent *de;
    char p[PATH_MAX + 256];
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", spool_root, de->d_name);
            loom_spool_entry_remove(p);
        }
    closedir(d);
    rmdir(spool_root);
}

/* ---- the keeper (async-signal-safe calls only: we forked a threaded process) */

static void put_num(char *buf, size_t *len, long v)
{
    char t[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do
        t[n++] = (char)('0' + u % 10);
    while ((u /= 10) && n < 22);
    if (v < 0)
        buf[(*len)++] = '-';
    while (n)
        buf[(*len)++] = t[--n];
}

static void write_num_file(int dir, const char *tmp, const char *name, long v)
{
    char buf[32];
    size_t len = 0;
    put_num(buf, &len, v);
    buf[len++] = '\n';
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, buf, len);
    (void)w;
    close(fd);
    renameat(dir, tmp, dir, name);
}

/* fds the keeper works with, moved to these numbers */
enum { K_DIR = 3, K_IN, K_OUT, K_ERR, K_REPORT, K_FIRST_FREE };

static void close_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0) == 0)
        return;
#endif
    for (int fd = lo; fd < 65536; fd++)
        close(fd);
}

static void on_tick(int sig)
{
    (void)sig; /* only interrupts waitpid */
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Noreturn void keeper_main(int fds[5], char **argv, char **envp, const char *cwd,
                                  int orphan_after_ms)
{
    /* fds to fixed numbers: first above the range, then down */
    int hi[5];
    for (int i = 0; i < 5; i++)
        hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < 5; i++)
        if (hi[i] < 0 || dup3(hi[i], K_DIR + i, O_CLOEXEC) < 0)
            _exit(126);
    close_from(K_FIRST_FREE);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_IGN); /* a terminal's ^C is for the worker */
    signal(SIGTERM, SIG_DFL);
    int lock = openat(K_DIR, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0)
        _exit(126);
    pid_t me = getpid();
    pid_t tool = fork();
    if (tool < 0) {
        int e = errno;
        ssize_t w = write(K_REPORT, &e, sizeof e);
        (void)w;
        _exit(126);
    }
    if (tool == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with its keeper */
        if (getppid() != me)
            _exit(127);
        signal(SIGINT, SIG_DFL);
        int e = 0;
        if (dup2(K_IN, 0) < 0 || dup2(K_OUT, 1) < 0 || dup2(K_ERR, 2) < 0 ||
            (cwd && chdir(cwd) != 0))
            e = errno;
        if (!e) {
            execvpe(argv[0], argv, envp);
            e = errno;
        }
        ssize_t w = write(K_REPORT, &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(tool, tool); /* also here: no race with kill(-tool) */
    write_num_file(K_DIR, "pid.tmp", "pid", tool);
    /* "started" and the tool's pid in one write (atomic on a pipe, so the
     * tool's exec errno cannot land in between) */
    struct {
        int zero;
        pid_t tool;
    } rep = {0, tool};
    ssize_t w = write(K_REPORT, &rep, sizeof rep);
    (void)w;
    close(K_REPORT);
    close(K_IN);
    close(K_OUT);
    close(K_ERR);
    /* Every 100 ms: is a worker waiting for the tool (a shared lock on
     * claim)? Unclaimed for orphan_ms (its worker died and none with its id
     * came back), the tool is killed before loomd runs the step elsewhere,
     * and no status is written: there is no result to deliver. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100000}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int claim = openat(K_DIR, "claim", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int64_t claimed = mono_ms();
    int st = 0, orphan_killed = 0;
    for (;;) {
        pid_t r = waitpid(tool, &st, 0);
        if (r == tool || (r < 0 && errno != EINTR))
            break;
        if (claim < 0 || flock(claim, LOCK_EX | LOCK_NB) != 0) {
            claimed = mono_ms();
            continue;
        }
        flock(claim, LOCK_UN);
        if (!orphan_killed && mono_ms() - claimed > orphan_after_ms) {
            kill(-tool, SIGKILL);
            kill(tool, SIGKILL);
            orphan_killed = 1;
        }
    }
    if (!orphan_killed)
        write_num_file(K_DIR, "status.tmp", "status", st);
    _exit(0);
}

static int open_in(const char *entry, const char *name, int flags)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/%s", entry, name);
    return open(p, flags | O_CLOEXEC, 0600);
}

static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int loom_spool_claim(const char *entry)
{
    int fd = open_in(entry, "claim", O_RDWR | O_CREAT);
    if (fd >= 0 && flock(fd, LOCK_SH) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int orphan_ms = 3000;

void loom_spool_set_orphan_ms(int ms)
{
    if (ms > 0)
        orphan_ms = ms;
}

int loom_kept_start(const char *entry, char **argv, char **envp, const char *cwd, loom_kept_t *k)
{
    k->keeper = k->tool = 0;
    k->pidfd = -1;
    /* claimed before the keeper exists, so it never sees its tool unclaimed
     * while this worker lives (the keeper closes its inherited copy) */
    k->claim = loom_spool_claim(entry);
    int fds[5] = {-1, -1, -1, -1, -1}, rp[2] = {-1, -1}, e = 0;
    fds[0] = open(entry, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fds[1] = open_in(entry, "stdin", O_RDONLY | O_CREAT);
    fds[2] = open_in(entry, "stdout", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    fds[3] = open_in(entry, "stderr", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0 || pipe2(rp, O_CLOEXEC) != 0) {
        e = errno ? errno : EIO;
        goto out;
    }
    fds[4] = rp[1];
    pid_t keeper = fork();
    if (keeper < 0) {
        e = errno;
        goto out;
    }
    if (keeper == 0) {
        setpgid(0, 0); /* not in the worker's group: a signal to it is not for the keeper */
        keeper_main(fds, argv, envp, cwd, orphan_ms);
    }
    close(rp[1]);
    fds[4] = rp[1] = -1;
    k->keeper = keeper;
    /* "0 then the tool's pid" once it is forked, then an errno if its exec
     * failed, or EOF once it runs (the report pipe is close-on-exec) */
    int first = -1;
    pid_t tool = 0;
    if (read_full(rp[0], &first, sizeof first) != (ssize_t)sizeof first)
        e = EIO;
    else if (first != 0)
        e = first; /* fork or exec failed first */
    else if (read_full(rp[0], &tool, sizeof tool) != (ssize_t)sizeof tool)
        e = EIO;
    else {
        int ex = 0;
        if (read_full(rp[0], &ex, sizeof ex) == (ssize_t)sizeof ex)
            e = ex ? ex : EIO;
    }
    k->tool = tool;
    if (e) {
        if (tool > 0)
            loom_kept_kill(tool);
        while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
            ;
        k->keeper = 0;
        if (k->claim >= 0)
            close(k->claim);
        k->claim = -1;
        goto out;
    }
#ifdef SYS_pidfd_open
    k->pidfd = (int)syscall(SYS_pidfd_open, keeper, 0);
#endif
out:
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (rp[0] >= 0)
        close(rp[0]);
    return e;
}

int loom_kept_wait(loom_kept_t *k, int ms)
{
    if (k->keeper <= 0)
        return 1;
    if (k->pidfd >= 0) {
        struct pollfd p = {k->pidfd, POLLIN, 0};
        if (poll(&p, 1, ms) == 0)
            return 0;
    }
    pid_t r;
    while ((r = waitpid(k->keeper, NULL, k->pidfd >= 0 ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == 0) { /* no pidfd: sleep in small steps */
        struct timespec ts = {0, (ms < 20 ? ms : 20) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (k->pidfd >= 0)
        close(k->pidfd);
    if (k->claim >= 0)
        close(k->claim);
    k->pidfd = k->claim = -1;
    k->keeper = 0;
    return 1;
}

void loom_kept_kill(pid_t tool)
{
    if (tool <= 0)
        return;
    kill(-tool, SIGKILL);
    kill(tool, SIGKILL);
}

int loom_spool_keeper_alive(const char *entry)
{
    int fd = open_in(entry, "lock", O_RDWR);
    if (fd < 0)
        return 0;
    int alive = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* also releases the lock if we got it */
    return alive;
}

static int read_num_file(const char *entry, const char *name, long *v, int64_t *mtime_ms)
{
    int fd = open_in(entry, name, O_RDONLY);
    if (fd < 0)
        return -1;
    char buf[32];
    ssize_t n = read_full(fd, buf, sizeof buf - 1);
    struct stat st;
    if (mtime_ms && fstat(fd, &st) == 0)
        *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *end;
    *v = strtol(buf, &end, 10);
    return end == buf ? -1 : 0;
}

pid_t loom_spool_tool_pid(const char *entry)
{
    long v = 0;
    return read_num_file(entry, "pid", &v, NULL) == 0 && v > 0 ? (pid_t)v : 0;
}

int loom_spool_status(const char *entry, int *wstatus, int64_t *when_ms)
{
    long v = 0;
    if (read_num_file(entry, "status", &v, when_ms) != 0)
        return -1;
    *wstatus = (int)v;
    return 0;
}
