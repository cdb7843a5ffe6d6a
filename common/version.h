/* version.h — the one version of every Loom program (`--version`), of the
 * Health RPC's answer and of what workers report when they register. */
#ifndef LOOM_COMMON_VERSION_H
#define LOOM_COMMON_VERSION_H

#define LOOM_VERSION "0.1.0"
/* Printed by `PROGRAM --version`: "loomd 0.1.0 (protocol 1)". */
#define LOOM_VERSION_LINE(prog) prog " " LOOM_VERSION " (protocol 1)\n"

#endif
