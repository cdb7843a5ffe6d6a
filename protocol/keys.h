/* keys.h — ZeroMQ CURVE key files in the layout `loom keygen` writes and
 * loomd, the workers and the CLI read.
 *
 *   NAME.key   the key pair, mode 0600:   "public: <40 Z85>\nsecret: <40 Z85>\n"
 *   NAME.pub   the public key alone:      "<40 Z85>\n"
 *
 * loomd's directory (`loom keygen --dir DIR`, `loomd --keys DIR`):
 *   DIR/loomd.key, DIR/loomd.pub   the server key pair (give loomd.pub out)
 *   DIR/auth.secret                HMAC secret(s) for tokens, one per line
 *   DIR/workers/NAME.pub           admitted workers (allow-list)
 *   DIR/clients/NAME.pub           admitted clients (only when the folder exists)
 *
 * Wherever a public key is asked for, either the 40 Z85 characters or the
 * path of a .pub/.key file is accepted. */
#ifndef LOOM_PROTOCOL_KEYS_H
#define LOOM_PROTOCOL_KEYS_H

#include "common/err.h"

#define LOOM_Z85_KEY_LEN 40

/* 1 when s is exactly 40 Z85 characters that decode to a 32-byte key. */
int loom_key_is_z85(const char *s);

/* Reads a public key (a .pub / .key file, or Z85 text when no file of
 * that name exists) into out[41].
 * Returns 0 or LOOM_EINVAL / LOOM_EIO with err naming the file. */
int loom_key_read_public(const char *text_or_path, char out[41], loom_err_t *err);

/* Reads a key pair file (NAME.key) into pub[41] and sec[41]. */
int loom_key_read_pair(const char *path, char pub[41], char sec[41], loom_err_t *err);

/* Makes a new key pair and writes DIR/NAME.key (0600) and DIR/NAME.pub
 * (0644); refuses to overwrite an existing NAME.key. pub[41] receives the
 * public key (may be NULL). */
int loom_key_write_pair(const char *dir, const char *name, char pub[41], loom_err_t *err);

#endif
