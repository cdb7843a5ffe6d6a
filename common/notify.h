/* notify.h — tells a service manager how a daemon is doing (systemd's
 * Type=notify protocol through libsystemd's sd_notify): READY=1 once it
 * serves, STOPPING=1 when it shuts down, STATUS=... for `systemctl status`.
 * A no-op when the daemon was not started by such a manager
 * ($NOTIFY_SOCKET unset). */
#ifndef LOOM_COMMON_NOTIFY_H
#define LOOM_COMMON_NOTIFY_H

/* Sends the printf-formatted state lines ("READY=1\nSTATUS=serving"). */
void loom_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
