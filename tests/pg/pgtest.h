/* pgtest.h — a throwaway PostgreSQL for a test process: starts one with
 * deploy/pg.sh under a temporary directory (or uses LOOM_TEST_DB when set)
 * and stops it at exit. Also small libpq helpers for asserting from the
 * database. Header-only: each test binary includes it once. */
#ifndef LOOM_TESTS_PGTEST_H
#define LOOM_TESTS_PGTEST_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char pgtest_dir[256];
static char pgtest_url[512];

static __attribute__((unused)) void pgtest_cmd(const char *verb) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "deploy/pg.sh %s %s >/dev/null 2>&1", verb, pgtest_dir);
    if (system(cmd) != 0) fprintf(stderr, "pgtest: '%s' failed\n", cmd);
}

static __attribute__((unused)) void pgtest_cleanup(void) {
    if (!pgtest_dir[0]) return;
    pgtest_cmd("stop");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", pgtest_dir);
    if (system(cmd) != 0) fprintf(stderr, "pgtest: cannot remove %s\n", pgtest_dir);
}

/* Returns the URL of a database for this process; exits 77 (skip) when no
 * PostgreSQL can be started. */
static __attribute__((unused)) const char *pgtest_start(void) {
    const char *env = getenv("LOOM_TEST_DB");
    if (env && *env) return env;
    snprintf(pgtest_dir, sizeof pgtest_dir, "/tmp/loom-pgtest-XXXXXX");
    if (!mkdtemp(pgtest_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(pgtest_cleanup);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "deploy/pg.sh start %s", pgtest_dir);
    FILE *f = popen(cmd, "r");
    if (!f || !fgets(pgtest_url, sizeof pgtest_url, f)) {
        if (f) pclose(f);
        printf("skip: cannot start PostgreSQL with deploy/pg.sh\n");
        exit(77);
    }
    pclose(f);
    pgtest_url[strcspn(pgtest_url, "\n")] = 0;
    return pgtest_url;
}

static __attribute__((unused)) void pgtest_stop_server(void) { pgtest_cmd("stop"); }
static __attribute__((unused)) void pgtest_start_server(void) { pgtest_cmd("start"); }

static __attribute__((unused)) PGconn *pgtest_connect(const char *url) {
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: connect %s: %s", url, PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQexec(c, "SET timezone = 'UTC'"));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* Runs sql and returns its rows as "a|b|c\n..." (NULL shown as "-");
 * caller frees. Exits on a query error. */
static __attribute__((unused)) char *pgtest_rows(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    for (int i = 0; i < PQntuples(r); i++)
        for (int j = 0; j < PQnfields(r); j++) {
            const char *v = PQgetisnull(r, i, j) ? "-" : PQgetvalue(r, i, j);
            size_t need = len + strlen(v) + 2;
            if (need >= cap) out = realloc(out, cap = need * 2);
            len += (size_t)sprintf(out + len, "%s%c", v, j + 1 < PQnfields(r) ? '|' : '\n');
        }
    PQclear(r);
    return out;
}

/* A fresh, empty database `name` next to the one of url (dropped first),
 * so tests do not see each other's rows. Returns its URL (static storage:
 * copy it before the next call). Exits when it cannot be made. */
static __attribute__((unused)) const char *pgtest_fresh_db(const char *url, const char *name) {
    static char u[600];
    PGconn *c = pgtest_connect(url);
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    PQclear(PQexec(c, sql));
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
    /* url ends with /loom */
    snprintf(u, sizeof u, "%.*s/%s", (int)(strrchr(url, '/') - url), url, name);
    return u;
}

static __attribute__((unused)) long pgtest_count(PGconn *c, const char *sql) {
    char *s = pgtest_rows(c, sql);
    long n = strtol(s, NULL, 10);
    free(s);
    return n;
}

#endif
