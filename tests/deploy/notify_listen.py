#!/usr/bin/python3
"""notify_listen.py SOCKET OUT — the service manager's side of sd_notify:
binds a Unix datagram socket at SOCKET (what systemd passes to a Type=notify
service as $NOTIFY_SOCKET) and appends every message it receives to OUT,
one message per line ('\\n' inside a message becomes ' | ')."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(out + ".bound", "w").close()
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        f.write(msg.replace("\n", " | ") + "\n")
