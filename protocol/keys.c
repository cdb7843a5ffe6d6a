/* keys.c — CURVE key files (see keys.h). */
#include "protocol/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "common/buf.h"

int loom_key_is_z85(const char *s)
{
    uint8_t raw[32];
    return s && strlen(s) == LOOM_Z85_KEY_LEN && zmq_z85_decode(raw, s) != NULL;
}

/* Reads a small file (under n bytes) into buf, NUL-terminated. */
static int slurp(const char *path, char *buf, size_t n, loom_err_t *err)
{
    loom_buf_t b;
    loom_buf_init(&b, n - 1);
    int rc = 0;
    if (loom_buf_read_file(&b, path) != 0)
        rc = errno == EFBIG ? loom_err_set(err, LOOM_EINVAL, "key file %s: larger than %zu bytes",
                                           path, n - 1)
                            : loom_err_set(err, LOOM_EIO, "cannot read key file %s: %s", path,
                                           strerror(errno));
    else
        memcpy(buf, b.data, b.len + 1);
    loom_buf_free(&b);
    return rc;
}

/* Finds "label: <z85>" (label NULL: the first 40-character word). */
static int find_key(const char *text, const char *label, char out[41])
{
    const char *p = text;
    if (label) { /* a line "label: KEY" */
        size_t n = strlen(label);
        for (;;) {
            p += strspn(p, " \t\r\n");
            if (!*p)
                return -1;
            if (strncmp(p, label, n) == 0 && p[n] == ':')
                break;
            p += strcspn(p, "\n");
        }
        p += n + 1;
        p += strspn(p, " \t");
    } else {
        p += strspn(p, " \t\r\n");
        while (*p == '#') { /* comment lines */
            p += strcspn(p, "\n");
            p += strspn(p, " \t\r\n");
        }
    }
    size_t len = strcspn(p, " \t\r\n");
    if (len != LOOM_Z85_KEY_LEN)
        return -1;
    memcpy(out, p, LOOM_Z85_KEY_LEN);
    out[LOOM_Z85_KEY_LEN] = '\0';
    return loom_key_is_z85(out) ? 0 : -1;
}

int loom_key_read_public(const char *text_or_path, char out[41], loom_err_t *err)
{
    if (!text_or_path || !*text_or_path)
        return loom_err_set(err, LOOM_EINVAL, "empty CURVE public key");
    /* An existing file wins: a path can itself be 40 Z85 characters (e.g.
     * /tmp/tmp.XXXXXXXXXX/keys/workers/sw1.pub), and taking it for the key
     * locked admitted workers out. */
    struct stat st;
    if (stat(text_or_path, &st) != 0 && loom_key_is_z85(text_or_path)) {
        memcpy(out, text_or_path, 41);
        return 0;
    }
    char buf[1024];
    int rc = slurp(text_or_path, buf, sizeof buf, err);
    if (rc)
        return rc;
    if (find_key(buf, "public", out) == 0 || find_key(buf, NULL, out) == 0)
        return 0;
    loom_err_set(err, LOOM_EINVAL, "%s: no CURVE public key (40 Z85 characters) found",
                 text_or_path);
    loom_err_hint(err, "make one with `loom keygen --dir DIR --name NAME`");
    return LOOM_EINVAL;
}

int loom_key_read_pair(const char *path, char pub[41], char sec[41], loom_err_t *err)
{
    char buf[1024];
    int rc = slurp(path, buf, sizeof buf, err);
    if (rc)
        return rc;
    if (find_key(buf, "public", pub) != 0 || find_key(buf, "secret", sec) != 0) {
        loom_err_set(err, LOOM_EINVAL, "%s: expected 'public: <z85>' and 'secret: <z85>' lines",
                     path);
        loom_err_hint(err, "make one with `loom keygen --dir DIR --name NAME`");
        return LOOM_EINVAL;
    }
    /* the secret key must belong to the public key */
    char derived[41];
    if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0)
        return loom_err_set(err, LOOM_EINVAL, "%s: the public key does not match the secret key",
                            path);
    return 0;
}

static int write_file(const char *path, const char *text, mode_t mode, int excl, loom_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), mode);
    if (fd < 0)
        return loom_err_set(err, errno == EEXIST ? LOOM_EEXIST : LOOM_EIO, "cannot create %s: %s",
                            path, strerror(errno));
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    ok = close(fd) == 0 && ok;
    return ok ? 0 : loom_err_set(err, LOOM_EIO, "cannot write %s: %s", path, strerror(errno));
}

int loom_key_write_pair(const char *dir, const char *name, char pub_out[41], loom_err_t *err)
{
    char pub[41], sec[41];
    if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) != 0)
        return loom_err_set(err, LOOM_EINTERNAL, "libzmq has no CURVE support");
    char path[4096], text[200];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    snprintf(text, sizeof text, "# ZeroMQ CURVE key pair '%s' (loom keygen); keep secret\n"
                                "public: %s\nsecret: %s\n", name, pub, sec);
    int rc = write_file(path, text, 0600, 1, err);
    if (rc == LOOM_EEXIST)
        loom_err_hint(err, "remove it first to make a new key");
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    snprintf(text, sizeof text, "%s\n", pub);
    if ((rc = write_file(path, text, 0644, 0, err)) != 0)
        return rc;
    if (pub_out)
        memcpy(pub_out, pub, 41);
    return 0;
}
