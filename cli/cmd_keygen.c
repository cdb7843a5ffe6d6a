/* cmd_keygen.c — `loom keygen`: secrets and tokens for loomd's auth.
 *
 *   loom keygen [--json]            a new auth secret + a CURVE key pair
 *   loom keygen --dir DIR [--name NAME]   key files in the layout loomd reads
 *   loom keygen --token --subject S [--tenant T] [--role R] [--ttl SECONDS] [--secret S | --secret-file F]
 *   loom keygen --verify TOKEN [--secret S | --secret-file F]
 *
 * The secret is used as text: the HMAC key is the secret string exactly as
 * printed (64 hex digits), so any language can mint or check tokens. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/sha.h"
#include "protocol/auth.h"
#include "protocol/keys.h"

static const char usage_text[] =
    "usage: loom keygen [--json]\n"
    "       loom keygen --dir DIR [--name NAME]\n"
    "       loom keygen --token --subject NAME [--tenant T] [--role user|admin] [--ttl SECONDS]\n"
    "                   [--secret S | --secret-file F] [--json]\n"
    "       loom keygen --verify TOKEN [--secret S | --secret-file F] [--json]\n"
    "\n"
    "Without options: prints a new random auth secret (64 hex digits) and a\n"
    "ZeroMQ CURVE key pair (Z85) for encrypting loomd's endpoints.\n"
    "--dir DIR writes loomd's files for secure mode (loomd --keys DIR): DIR/loomd.key,\n"
    "DIR/loomd.pub, DIR/auth.secret and an empty allow-list DIR/workers/.\n"
    "--dir DIR --name NAME writes a worker's or client's key pair DIR/NAME.key and\n"
    "DIR/NAME.pub; admit it by copying NAME.pub into loomd's workers/ (or clients/).\n"
    "--token mints a signed bearer token loom2.<subject>.<tenant>.<role>.<expiry>.<hmac>\n"
    "for the 'authorization' metadata (TTL 0 = never expires; default 30 days; tenant\n"
    "'default', role 'user': sees its tenant's runs; 'admin' sees every tenant).\n"
    "--verify checks a token: exit 0 when valid, 1 when not (the reason is printed).\n"
    "The secret comes from --secret, --secret-file (first line) or $LOOM_AUTH_SECRET.\n";

static int read_secret(const char *arg, const char *file, char *out, size_t n)
{
    if (arg) {
        snprintf(out, n, "%s", arg);
    } else if (file) {
        FILE *f = fopen(file, "r");
        if (!f || !fgets(out, (int)n, f)) {
            fprintf(stderr, "loom keygen: cannot read secret file '%s'\n", file);
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        out[strcspn(out, "\r\n")] = '\0';
    } else if (getenv("LOOM_AUTH_SECRET")) {
        snprintf(out, n, "%s", getenv("LOOM_AUTH_SECRET"));
    } else {
        fprintf(stderr, "loom keygen: no secret (use --secret, --secret-file or $LOOM_AUTH_SECRET)\n");
        return -1;
    }
    if (!out[0]) {
        fprintf(stderr, "loom keygen: the secret is empty\n");
        return -1;
    }
    return 0;
}

/* `--dir DIR [--name NAME]`: the files of protocol/keys.h's layout. */
static int write_layout(const char *dir, const char *name, int json)
{
    loom_err_t err;
    loom_err_clear(&err);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "loom keygen: cannot create %s: %s\n", dir, strerror(errno));
        return LOOM_EXIT_SYSTEM;
    }
    char pub[41], path[4096];
    if (loom_key_write_pair(dir, name ? name : "loomd", pub, &err) != 0) {
        char buf[1200];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "loom keygen: %s\n", buf);
        return err.code == LOOM_EEXIST ? LOOM_EXIT_FAIL : LOOM_EXIT_SYSTEM;
    }
    if (!name) {
        uint8_t raw[32];
        char hex[65];
        snprintf(path, sizeof path, "%s/auth.secret", dir);
        int fd = loom_random_bytes(raw, sizeof raw) == 0
                     ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                     : -1;
        loom_hex(raw, sizeof raw, hex);
        hex[64] = '\n';
        int ok = fd >= 0 && write(fd, hex, 65) == 65;
        if (fd >= 0)
            ok = close(fd) == 0 && ok;
        snprintf(path, sizeof path, "%s/workers", dir);
        if (!ok || (mkdir(path, 0755) != 0 && errno != EEXIST)) {
            fprintf(stderr, "loom keygen: cannot write %s/auth.secret or %s: %s\n", dir, path,
                    strerror(errno));
            return LOOM_EXIT_SYSTEM;
        }
    }
    const char *n = name ? name : "loomd";
    if (json)
        printf("{\"key_file\": \"%s/%s.key\", \"public_key_file\": \"%s/%s.pub\", "
               "\"public_key\": \"%s\"}\n",
               dir, n, dir, n, pub);
    else if (name)
        printf("wrote %s/%s.key (key pair, keep it on that host) and %s/%s.pub\n"
               "admit it: copy %s/%s.pub into loomd's workers/ (or clients/) folder\n",
               dir, n, dir, n, dir, n);
    else
        printf("wrote %s/loomd.key, %s/loomd.pub (give to workers and clients), %s/auth.secret "
               "(token secret) and %s/workers/ (admitted worker keys)\n"
               "start: loomd --keys %s\n",
               dir, dir, dir, dir, dir);
    return LOOM_EXIT_OK;
}

int loom_cmd_keygen(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    int json = 0, token = 0;
    const char *subject = NULL, *secret_arg = NULL, *secret_file = NULL, *verify = NULL;
    const char *dir = NULL, *name = NULL, *tenant = NULL, *role = NULL;
    long long ttl = 30LL * 24 * 3600;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--token") == 0)
            token = 1;
        else if (strcmp(argv[i], "--subject") == 0 && i + 1 < argc)
            subject = argv[++i];
        else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            char *end;
            ttl = strtoll(argv[++i], &end, 10);
            if (*end || ttl < 0) {
                fprintf(stderr, "loom keygen: --ttl wants seconds >= 0, got '%s'\n", argv[i]);
                return LOOM_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
            secret_arg = argv[++i];
        else if (strcmp(argv[i], "--secret-file") == 0 && i + 1 < argc)
            secret_file = argv[++i];
        else if (strcmp(argv[i], "--verify") == 0 && i + 1 < argc)
            verify = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc)
            tenant = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else {
            fprintf(stderr, "loom keygen: unknown option '%s'\n\n%s", argv[i], usage_text);
            return LOOM_EXIT_USAGE;
        }
    }
    if (name && (!dir || !*name || strchr(name, '/') || name[0] == '.')) {
        fprintf(stderr, "loom keygen: --name wants --dir and a plain file name, got '%s'\n", name);
        return LOOM_EXIT_USAGE;
    }
    if (dir)
        return write_layout(dir, name, json);
    char secret[512];
    loom_err_t err;
    loom_err_clear(&err);
    if (verify) {
        if (read_secret(secret_arg, secret_file, secret, sizeof secret) != 0)
            return LOOM_EXIT_USAGE;
        loom_principal_t who = {0};
        int rc = loom_auth_token_check((const uint8_t *)secret, strlen(secret), verify,
                                       (int64_t)time(NULL), &who, &err);
        if (json)
            printf("{\"valid\": %s, \"subject\": \"%s\", \"tenant\": \"%s\", \"role\": \"%s\", "
                   "\"expires_unix\": %lld, \"error\": \"%s\"}\n",
                   rc ? "false" : "true", who.subject, who.tenant, who.role,
                   (long long)who.expiry_unix_s, rc ? err.msg : "");
        else if (rc)
            fprintf(stderr, "loom keygen: invalid token: %s\n", err.msg);
        else
            printf("valid token for '%s' (tenant %s, role %s)\n", who.subject, who.tenant, who.role);
        return rc ? LOOM_EXIT_FAIL : LOOM_EXIT_OK;
    }
    if (token) {
        if (!subject) {
            fprintf(stderr, "loom keygen: --token needs --subject NAME\n");
            return LOOM_EXIT_USAGE;
        }
        if (read_secret(secret_arg, secret_file, secret, sizeof secret) != 0)
            return LOOM_EXIT_USAGE;
        long long expiry = ttl ? (long long)time(NULL) + ttl : 0;
        char tok[LOOM_AUTH_TOKEN_MAX];
        if (loom_auth_token_mint((const uint8_t *)secret, strlen(secret), subject, tenant, role,
                                 expiry, tok, sizeof tok, &err) != 0) {
            fprintf(stderr, "loom keygen: %s\n", err.msg);
            loom_err_hint(&err, "subjects and tenants are 1-64 characters of [A-Za-z0-9_-]; "
                                "roles are user and admin");
            fprintf(stderr, "  hint: %s\n", err.hint);
            return LOOM_EXIT_USAGE;
        }
        if (json)
            printf("{\"token\": \"%s\", \"subject\": \"%s\", \"tenant\": \"%s\", \"role\": \"%s\", "
                   "\"expires_unix\": %lld}\n",
                   tok, subject, tenant ? tenant : "default", role ? role : "user", expiry);
        else
            printf("%s\n", tok);
        return LOOM_EXIT_OK;
    }
    uint8_t raw[32];
    char hex[65], pub[41] = "", sec[41] = "";
    if (loom_random_bytes(raw, sizeof raw) != 0) {
        fprintf(stderr, "loom keygen: no randomness available\n");
        return LOOM_EXIT_SYSTEM;
    }
    loom_hex(raw, sizeof raw, hex);
    int curve = zmq_has("curve") && zmq_curve_keypair(pub, sec) == 0;
    if (json) {
        printf("{\"auth_secret\": \"%s\"", hex);
        if (curve)
            printf(", \"curve_public_key\": \"%s\", \"curve_secret_key\": \"%s\"", pub, sec);
        printf("}\n");
    } else {
        printf("auth secret:      %s\n", hex);
        if (curve)
            printf("curve public key: %s\ncurve secret key: %s\n", pub, sec);
        else
            printf("(libzmq has no CURVE support: no key pair)\n");
    }
    return LOOM_EXIT_OK;
}
