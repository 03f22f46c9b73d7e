# The Python rows of ipcbox-bench: `python -c SCRIPT KIND IMPL MODE SIZE WARMUP COUNT PCPU CCPU`
# runs one measurement between this process and a forked peer and prints it as JSON.
#
# KIND is queue, connection or value; IMPL which library (mp, ipcbox, ipcbox_bytes,
# ipcbox_many, faster_fifo, faster_fifo_bytes, faster_fifo_many, raw); MODE latency or
# throughput. Latency: round trips (the peer echoes), or for values one locked increment
# while the peer increments too. Throughput: COUNT messages one way, then a 1-byte ack.
import json, os, struct, sys, time
import multiprocessing as mp

kind, impl, mode = sys.argv[1:4]
size, warmup, count, pcpu, ccpu = (int(a) for a in sys.argv[4:9])
ctx = mp.get_context("fork")
clock = time.perf_counter_ns
BATCH = 64
ROOM = 64 << 20


def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})


# ---- queues: each implementation gives (make, put, get) and, for batches, (put_n, get_n)

def queue_impl():
    """(make, put, get): put(q) and get(q) return q's bound methods, so that the timed loops
    make one call per message, as a user's loop would."""
    if impl == "mp":
        return ctx.Queue, (lambda q: q.put), (lambda q: q.get)
    if impl.startswith("ipcbox"):
        import ipcbox
        make = lambda: ipcbox.Queue(maxbytes=ROOM)
        if impl == "ipcbox":
            return make, (lambda q: q.put), (lambda q: q.get)
        return make, (lambda q: q.put_bytes), (lambda q: q.get_bytes)
    if impl.startswith("faster_fifo"):
        import faster_fifo
        from functools import partial
        if impl == "faster_fifo_bytes":
            make = lambda: faster_fifo.Queue(max_size_bytes=ROOM, loads=bytes, dumps=bytes)
        else:
            make = lambda: faster_fifo.Queue(max_size_bytes=ROOM)
        # faster_fifo's put and get time out after 10 s by default (faster-fifo#42).
        return (make, (lambda q: partial(q.put, timeout=1e9)),
                (lambda q: partial(q.get, timeout=1e9)))
    raise SystemExit(f"no queue implementation {impl}")


def batch_impl():
    """(put_many, get_many) as for queue_impl, or None."""
    from functools import partial
    if impl == "ipcbox_many":
        return ((lambda q: q.put_many_bytes),
                (lambda q: partial(q.get_many_bytes, max_messages_to_get=BATCH)))
    if impl == "faster_fifo_many":
        return ((lambda q: partial(q.put_many, timeout=1e9)),
                (lambda q: partial(q.get_many, timeout=1e9, max_messages_to_get=BATCH)))
    return None


def run_queue():
    make, put, get = queue_impl()
    many = batch_impl()
    a, b = make(), make()
    msg = b"\xa5" * size

    if mode == "latency":
        def echo():
            pin(ccpu)
            get_a, put_b = get(a), put(b)
            for _ in range(warmup + count):
                put_b(get_a())
        p = ctx.Process(target=echo)
        p.start()
        put_a, get_b = put(a), get(b)
        for _ in range(warmup):
            put_a(msg)
            get_b()
        samples, reply, t = [], msg, clock()
        for _ in range(count):
            put_a(msg)
            reply = get_b()
            now = clock()
            samples.append(now - t)
            t = now
        p.join()
        return {"ok": reply == msg and p.exitcode == 0, "samples": samples}

    def sink():
        pin(ccpu)
        put_b = put(b)
        if many:
            get_many_a = many[1](a)
            got = 0
            while got < warmup:
                got += len(get_many_a())
            put_b(b"\x06")
            got = 0
            while got < count:
                got += len(get_many_a())
        else:
            get_a = get(a)
            for _ in range(warmup):
                get_a()
            put_b(b"\x06")
            for _ in range(count):
                get_a()
        put_b(b"\x06")

    if many:
        put_many_a = many[0](a)
        batch = [msg] * BATCH

        def send(n):
            while n > 0:
                put_many_a(batch[:n] if n < BATCH else batch)
                n -= BATCH
    else:
        put_a = put(a)

        def send(n):
            for _ in range(n):
                put_a(msg)

    p = ctx.Process(target=sink)
    p.start()
    get_b = get(b)
    send(warmup)
    get_b()
    t = clock()
    send(count)
    ack = get_b()
    elapsed = clock() - t
    p.join()
    return {"ok": ack == b"\x06" and p.exitcode == 0, "elapsed_ns": elapsed}


# ---- connections

def connection_pair():
    if impl == "mp":
        a, b = ctx.Pipe()
        return a, b, (lambda c, m: c.send_bytes(m)), (lambda c: c.recv_bytes())
    if impl == "ipcbox":
        import ipcbox
        a, b = ipcbox.Pipe()
        return a, b, (lambda c, m: c.send_bytes(m)), (lambda c: c.recv_bytes())
    if impl == "raw":
        import socket
        s1, s2 = socket.socketpair()

        def send(s, m):
            s.sendall(struct.pack("<I", len(m)) + m)

        def recv_exact(s, n):
            buf = bytearray(n)
            view, got = memoryview(buf), 0
            while got < n:
                got += s.recv_into(view[got:])
            return bytes(buf)

        def recv(s):
            (n,) = struct.unpack("<I", recv_exact(s, 4))
            return recv_exact(s, n)
        return s1, s2, send, recv
    raise SystemExit(f"no connection implementation {impl}")


def run_connection():
    a, b, send, recv = connection_pair()
    msg = b"\xa5" * size
    if mode == "latency":
        def echo():
            pin(ccpu)
            for _ in range(warmup + count):
                send(b, recv(b))
        p = ctx.Process(target=echo)
        p.start()
        for _ in range(warmup):
            send(a, msg)
            recv(a)
        samples, reply, t = [], msg, clock()
        for _ in range(count):
            send(a, msg)
            reply = recv(a)
            now = clock()
            samples.append(now - t)
            t = now
        p.join()
        return {"ok": reply == msg and p.exitcode == 0, "samples": samples}

    def sink():
        pin(ccpu)
        for _ in range(warmup):
            recv(b)
        send(b, b"\x06")
        for _ in range(count):
            recv(b)
        send(b, b"\x06")
    p = ctx.Process(target=sink)
    p.start()
    for _ in range(warmup):
        send(a, msg)
    recv(a)
    t = clock()
    for _ in range(count):
        send(a, msg)
    ack = recv(a)
    elapsed = clock() - t
    p.join()
    return {"ok": ack == b"\x06" and p.exitcode == 0, "elapsed_ns": elapsed}


# ---- values: both processes increment one shared value under its lock

def run_value():
    if impl == "mp":
        v = ctx.Value("q", 0)
    elif impl == "ipcbox":
        import ipcbox
        v = ipcbox.Value("q", 0)
    elif impl == "raw":
        v = None
        raw = ctx.RawValue("q", 0)
    else:
        raise SystemExit(f"no value implementation {impl}")

    if v is not None:
        lock = v.get_lock()

        def bump(n):
            for _ in range(n):
                with lock:
                    v.value += 1
    else:
        def bump(n):
            # The floor: the same Python increment of shared memory, with no lock at all.
            for _ in range(n):
                raw.value += 1

    total = warmup + count
    p = ctx.Process(target=lambda: (pin(ccpu), bump(total)))
    p.start()
    bump(warmup)
    samples = []
    left = count
    while left > 0:
        n = min(BATCH, left)
        t = clock()
        bump(n)
        per = (clock() - t) // n
        samples.extend([per] * n)
        left -= n
    p.join()
    ok = p.exitcode == 0 and (v is None or v.value == 2 * total)
    return {"ok": ok, "samples": samples}


pin(pcpu)
run = {"queue": run_queue, "connection": run_connection, "value": run_value}[kind]
print(json.dumps(run()))
