/* version.h — the one version string every command prints for --version. */
#ifndef LOOM_COMMON_VERSION_H
#define LOOM_COMMON_VERSION_H

#define LOOM_VERSION "0.1.0"

#endif
