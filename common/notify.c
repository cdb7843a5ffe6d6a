/* notify.c — service manager notifications (see notify.h). */
#include "common/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

void loom_notify(const char *fmt, ...)
{
    char state[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state, sizeof state, fmt, ap);
    va_end(ap);
    sd_notify(0, state); /* best effort: nothing to do when it fails */
}
