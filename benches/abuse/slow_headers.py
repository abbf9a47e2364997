"""200 (or SLOW_CONNECTIONS) connections that drip header lines and never finish a request,
reconnecting whenever the server cuts them off, for DURATION seconds. Prints how many times
they were cut off. Talks only to the given loopback address."""
import os, socket, sys, time

host, port = sys.argv[1], int(sys.argv[2])
count = int(os.environ.get("SLOW_CONNECTIONS", "200"))
duration = float(os.environ.get("DURATION", "60"))
deadline = time.time() + duration

def connect():
    s = socket.create_connection((host, port), timeout=5)
    s.setblocking(False)
    s.send(b"GET /api/v1/questions/1 HTTP/1.1\r\nHost: kb\r\n")
    return s

socks, cut_off, refused = [], 0, 0
for _ in range(count):
    try:
        socks.append(connect())
    except OSError:
        refused += 1
i = 0
while time.time() < deadline:
    time.sleep(1)
    i += 1
    for n, s in enumerate(socks):
        try:
            s.send(b"X-Drip-%d: 1\r\n" % i)
            s.recv(1024)
            # Anything but "nothing yet" means the server answered or hung up.
            raise OSError("cut off")
        except BlockingIOError:
            pass
        except OSError:
            cut_off += 1
            s.close()
            try:
                socks[n] = connect()
            except OSError:
                refused += 1
for s in socks:
    s.close()
print(f"SLOW cut_off={cut_off} refused={refused}")
