/* policy.c — tool execution policy (see policy.h). */
#include "workers/common/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_ENTRIES 256

typedef struct {
    char *text;              /* the flag's value, for messages */
    char *v[MAX_ENTRIES];    /* entries (point into a copy) */
    size_t n;
    int active;
} list_t;

static list_t exec_list, host_list;

static int parse(list_t *l, const char *flag, const char *value, loom_err_t *err)
{
    if (!value)
        return 0;
    char *copy = strdup(value);
    l->text = strdup(value);
    if (!copy || !l->text)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (char *save = NULL, *p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        if (l->n == MAX_ENTRIES)
            return loom_err_set(err, LOOM_EINVAL, "%s: more than %d entries", flag, MAX_ENTRIES);
        l->v[l->n++] = p;
    }
    l->active = 1; /* an empty list allows nothing */
    return 0;
}

int loom_policy_set(const char *allow_exec, const char *allow_hosts, loom_err_t *err)
{
    int rc = parse(&exec_list, "--allow-exec", allow_exec, err);
    return rc ? rc : parse(&host_list, "--allow-hosts", allow_hosts, err);
}

/* The first executable file named name in the worker's PATH. */
static int which(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        if (len && (size_t)snprintf(out, n, "%.*s/%s", (int)len, p, name) < n &&
            access(out, X_OK) == 0)
            return 0;
        p += len + (p[len] == ':');
    }
    return -1;
}

int loom_policy_check_exec(const char *argv0, char *resolved, size_t n, loom_err_t *err)
{
    snprintf(resolved, n, "%s", argv0);
    if (!exec_list.active)
        return 0;
    int has_slash = strchr(argv0, '/') != NULL;
    for (size_t i = 0; i < exec_list.n; i++) {
        const char *e = exec_list.v[i];
        if (has_slash ? strcmp(e, argv0) == 0 : strchr(e, '/') == NULL && strcmp(e, argv0) == 0) {
            if (!has_slash && which(argv0, resolved, n) != 0)
                return loom_err_set(err, LOOM_ENOTFOUND,
                                    "tool.exec: '%s' is allowed (--allow-exec) but not found in "
                                    "the worker's PATH", argv0);
            return 0;
        }
    }
    loom_err_set(err, LOOM_EINVAL,
                 "tool.exec: '%s' is refused by this worker's policy --allow-exec (allowed: %s)",
                 argv0, exec_list.text);
    return LOOM_EINVAL;
}

int loom_policy_check_url(const char *url, loom_err_t *err)
{
    if (!host_list.active)
        return 0;
    CURLU *u = curl_url();
    char *host = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return loom_err_set(err, LOOM_EINVAL, "tool.http: cannot read the host of '%s'", url);
    }
    int ok = 0;
    size_t hl = strlen(host);
    for (size_t i = 0; i < host_list.n && !ok; i++) {
        const char *e = host_list.v[i];
        size_t el = strlen(e);
        if (e[0] == '.')
            ok = strcasecmp(host, e + 1) == 0 || (hl > el && strcasecmp(host + hl - el, e) == 0);
        else
            ok = strcasecmp(host, e) == 0;
    }
    if (!ok)
        loom_err_set(err, LOOM_EINVAL,
                     "tool.http: host '%s' is refused by this worker's policy --allow-hosts "
                     "(allowed: %s)", host, host_list.text);
    curl_free(host);
    curl_url_cleanup(u);
    return ok ? 0 : LOOM_EINVAL;
}
