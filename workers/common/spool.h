/* spool.h — tool.exec processes whose results outlive their worker.
 *
 * A worker killed (-9, crash) between a tool's exit and its result reaching
 * loomd used to lose the result, so the step ran again although its tool
 * had finished. Now every tool runs under a small keeper process (forked
 * from the worker, not killed with it) that records the tool's exit status
 * in a spool entry on disk, next to the tool's stdin, stdout and stderr
 * files. A worker that starts again with the same --id and endpoint finds
 * its entries: finished ones are offered to loomd like results kept in
 * memory (HELD_FINISHED), ones still running are waited for (HELD_RUNNING).
 *
 * Entry layout (<root>/<task id>.<attempt>/):
 *   meta            JSON written by the handler before the start (task id,
 *                   attempt, key, op, how to turn the files into a result)
 *   stdin           the tool's standard input
 *   stdout, stderr  what the tool writes
 *   lock            flock()ed by the keeper for its whole life
 *   pid             the tool's pid (it leads its own process group)
 *   status          its wait status in decimal, renamed into place once it
 *                   exited (absent: it has not exited, or the keeper died)
 *   claim           flock()ed (shared) by each worker process waiting for the
 *                   tool; the keeper kills a tool left unclaimed too long
 * The tool dies with its keeper (PR_SET_PDEATHSIG); the keeper lives until
 * the tool exits. */
#ifndef LOOM_WORKERS_SPOOL_H
#define LOOM_WORKERS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Creates root (and missing parents, mode 0700) and makes it this process's
 * spool. */
int loom_spool_init(const char *root, loom_err_t *err);
/* in as one file name (never a path): characters other than [A-Za-z0-9._-]
 * become '_'; out is NUL-terminated, cut to n - 1 bytes. */
void loom_spool_file_name(const char *in, char *out, size_t n);
/* The spool root ("" before loom_spool_init). */
const char *loom_spool_root(void);

/* Creates the (empty) entry of one attempt; path gets its directory. */
int loom_spool_entry_new(const char *task_id, uint32_t attempt, char *path, size_t n,
                         loom_err_t *err);
/* Removes an entry and its files (an entry holds no directories). */
void loom_spool_entry_remove(const char *entry);
/* Removes the whole spool (every entry, then root). */
void loom_spool_remove_all(void);

/* A tool started under a keeper. */
typedef struct loom_kept {
    pid_t keeper; /* the worker's child; reap it with loom_kept_wait */
    pid_t tool;   /* the keeper's child, leader of its own process group */
    int pidfd;    /* readable once the keeper exited; -1 when unavailable */
    int claim;    /* this worker's shared lock on entry/claim */
} loom_kept_t;

/* Starts argv (PATH lookup) with envp in cwd (NULL: the worker's) under a
 * keeper, stdin from entry/stdin (created empty when missing), stdout and
 * stderr into entry/stdout and entry/stderr. Returns 0, or the errno of the
 * failed fork/exec (the keeper is reaped). The worker claims the tool
 * (a shared flock on entry/claim) until loom_kept_wait reaps the keeper;
 * a tool left unclaimed for orphan_ms (its worker died and no process with
 * the same id took it over: loom_spool_claim) is killed by its keeper
 * without a status, so it is not still running when loomd gives the step
 * to another worker (see loom_spool_set_orphan_ms). */
int loom_kept_start(const char *entry, char **argv, char **envp, const char *cwd, loom_kept_t *k);
/* orphan_ms for the keepers started from now on: 1.5 x loomd's heartbeat
 * timeout (RegisterReply); loomd runs a lost worker's started step
 * elsewhere no earlier than twice the timeout after the worker's last
 * message. Default 3000. */
void loom_spool_set_orphan_ms(int ms);
/* Claims a tool found in the spool (see loom_kept_start): returns the fd
 * holding the shared lock (close it when done), or -1. */
int loom_spool_claim(const char *entry);
/* Waits up to ms for the keeper to exit; 1 when it did (reaped), else 0. */
int loom_kept_wait(loom_kept_t *k, int ms);
/* SIGKILL to the tool's process group. */
void loom_kept_kill(pid_t tool);

/* 1 while a keeper holds the entry's lock. */
int loom_spool_keeper_alive(const char *entry);
/* The tool's pid from entry/pid (0 when unknown). */
pid_t loom_spool_tool_pid(const char *entry);
/* Reads entry/status: 0 and *wstatus when the tool exited, else -1. */
int loom_spool_status(const char *entry, int *wstatus, int64_t *when_ms);

#endif
