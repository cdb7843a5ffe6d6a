#!/usr/bin/python3
"""sniff.py OUT READY IFACE... — packet capture without tcpdump: reads every
frame seen on the interfaces through AF_PACKET raw sockets and appends the
raw bytes to OUT until SIGTERM. Touches READY once the sockets are bound,
so a test starts traffic only when nothing can be missed. Run it inside
the namespace that owns the interfaces (tests/integration/netns.sh)."""
import select
import signal
import socket
import sys

ETH_P_ALL = 0x0003


def main():
    out_path, ready, ifaces = sys.argv[1], sys.argv[2], sys.argv[3:]
    socks = []
    for name in ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((name, 0))
        socks.append(s)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    frames = 0
    with open(out_path, "wb") as out:
        open(ready, "w").close()
        while not stop:
            try:
                readable, _, _ = select.select(socks, [], [], 0.2)
            except InterruptedError:
                continue
            for s in readable:
                out.write(s.recv(65535))
                frames += 1
        # what is still queued when told to stop
        for s in socks:
            s.setblocking(False)
            while True:
                try:
                    out.write(s.recv(65535))
                    frames += 1
                except BlockingIOError:
                    break
    print(f"captured {frames} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
