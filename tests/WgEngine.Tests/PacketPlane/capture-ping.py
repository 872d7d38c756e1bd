#!/usr/bin/env python3
"""Captures golden ICMP echo vectors from the real Linux stack (run as root; not run by the tests).

In a network namespace created here (unique name, deleted in `finally`):
  1. `ping -c1` an address routed into a TUN device and read the kernel's echo request from the TUN fd;
  2. swap its source/destination (checksums stay valid: the sums commute) and write it back into the
     TUN, so the kernel sees a request addressed to itself; read the kernel's echo reply.
Prints the request/reply pairs as hex for IcmpGoldenVectorTests.cs. Usage: python3 capture-ping.py
"""
import fcntl, os, select, struct, subprocess, sys, time

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def sh(*args):
    subprocess.run(args, check=True)


def read_until(fd, want, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            pkt = os.read(fd, 65535)
            if want(pkt):
                return pkt
    raise TimeoutError("no matching packet from the TUN device")


def swap(pkt):
    b = bytearray(pkt)
    if b[0] >> 4 == 4:
        b[12:16], b[16:20] = pkt[16:20], pkt[12:16]
    else:
        b[8:24], b[24:40] = pkt[24:40], pkt[8:24]
    return bytes(b)


def is_echo(pkt, v, icmp_type):
    if v == 4:
        return len(pkt) >= 28 and pkt[0] >> 4 == 4 and pkt[9] == 1 and pkt[(pkt[0] & 15) * 4] == icmp_type
    return len(pkt) >= 48 and pkt[0] >> 4 == 6 and pkt[6] == 58 and pkt[40] == icmp_type


def inner():
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"gold0", IFF_TUN | IFF_NO_PI))
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "10.213.0.1/24", "dev", "gold0")
    sh("ip", "-6", "addr", "add", "fd00:213::1/64", "dev", "gold0", "nodad")
    sh("ip", "link", "set", "gold0", "up")
    for v, peer, size, req, rep in ((4, "10.213.0.2", "37", 8, 0), (6, "fd00:213::2", "37", 128, 129)):
        ping = subprocess.Popen(["ping", f"-{v}", "-c1", "-W1", "-s", size, "-p", "a5", peer],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            request = read_until(fd, lambda p: is_echo(p, v, req))
        finally:
            ping.kill()
            ping.wait()
        request = swap(request)
        os.write(fd, request)
        reply = read_until(fd, lambda p: is_echo(p, v, rep))
        print(f"IPv{v} request (to us): {request.hex()}")
        print(f"IPv{v} kernel reply:    {reply.hex()}")
    os.close(fd)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner()
    ns = f"wgicmpgold-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inner"], check=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
