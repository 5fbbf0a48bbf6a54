#!/usr/bin/env python3
"""make bench: taskq, the BaseManager tutorial and raw ZeroMQ side by side, in one run.

Everything talks to 127.0.0.1 only, on ports the OS picks. The figures are
ratios taken in the same run: absolute times on a shared 2-core machine drift
from run to run, ratios taken side by side hold.

  bench/run_bench.py BUILD_DIR [--quick] [--json FILE]

BUILD_DIR is a Release build configured with -DTASKQ_BENCH=ON (make bench
does that in build-release). --quick runs a small version in under a minute.
Prints a table, writes the same as JSON (default BUILD_DIR/bench.json), and
exits 0 whether or not each target is met: the table says which.
"""
import argparse
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
AUTHKEY = 'bench-key'  # the benchmark's own; given through TASKQ_AUTHKEY, never printed
ENV = dict(os.environ, TASKQ_AUTHKEY=AUTHKEY)


class BenchError(Exception):
    pass


def log(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


def rss_kb(pid, field='VmRSS'):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise BenchError('no %s for pid %d' % (field, pid))


class Master:
    """task_master on 127.0.0.1, any free port; its stdout read line by line (with --json,
    only the summary is there)."""

    def __init__(self, build, args, timeout=600):
        # Its log goes to a file: a pipe nobody reads would fill (1000 "joined"
        # lines) and stall the master.
        self.log = tempfile.TemporaryFile(mode='w+')
        # The master writes through the same open file that log_text() seeks
        # in: without O_APPEND, a seek(0) between two of its writes made the
        # next one overwrite the start of the log (the banner lost, once).
        flags = fcntl.fcntl(self.log.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self.log.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.proc = subprocess.Popen(
            [os.path.join(build, 'master', 'task_master'), '--bind', '127.0.0.1', '--port', '0'] + args,
            stdout=subprocess.PIPE, stderr=self.log, env=ENV, text=True)
        self.deadline = time.monotonic() + timeout
        if '--json' in args:
            # Its stdout is pure JSON: the banner is in the log (stderr).
            m, start = None, time.monotonic()
            while not m and self.proc.poll() is None and time.monotonic() < start + 30:
                m = re.search(r'listening on 127\.0\.0\.1:(\d+)', self.log_text())
                if not m:
                    time.sleep(0.02)
            first = ''
        else:
            first = self.proc.stdout.readline()
            m = re.search(r'listening on 127\.0\.0\.1:(\d+)', first)
        if not m:
            self.stop()
            raise BenchError('task_master did not start: ' + first + self.log_text())
        self.port = int(m.group(1))
        self.address = '127.0.0.1:%d' % self.port

    def log_text(self):
        self.log.seek(0)
        return self.log.read()

    def wait_for_log(self, text, count=1, timeout=30):
        """Until the master's log says text count times (it logs each worker that joins)."""
        deadline = time.monotonic() + timeout
        while self.log_text().count(text) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise BenchError('the master never logged %r' % text)
            time.sleep(0.02)

    def json_summary(self):
        """The job's --json line (the master must have been started with --json)."""
        for line in self.proc.stdout:
            if line.startswith('{'):
                return json.loads(line)
        raise BenchError('task_master gave no summary: ' + self.log_text()[-2000:])

    def wait(self):
        left = max(1, self.deadline - time.monotonic())
        try:
            return self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BenchError('task_master did not finish in time')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_workers(build, address, n, extra=()):
    return [subprocess.Popen([os.path.join(build, 'worker', 'task_worker'), '--server', address, '--quiet']
                             + list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
            for _ in range(n)]


def reap(procs, timeout=30):
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_json(cmd, timeout):
    """Runs a tool that prints one JSON line; returns it parsed."""
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError('%s did not finish in %d s' % (os.path.basename(cmd[0]), timeout))
    for line in out.stdout.splitlines():
        if line.startswith('{'):
            return json.loads(line)
    raise BenchError('%s printed no result: %s' % (' '.join(cmd[:2]), out.stderr[-2000:]))


# --- the measurements ----------------------------------------------------------------


def taskq_job(build, n, workers, extra=(), timeout=600, during=None):
    """task_master --square N with W task_workers: the job's --json summary.
    during(m), if given, runs once the master is up, before the workers start."""
    m = Master(build, ['--square', str(n), '--workers', str(workers), '--json', '--quiet', '--timeout', '60']
               + list(extra), timeout=timeout)
    try:
        if during:
            during(m)
        ws = start_workers(build, m.address, workers)
        try:
            summary = m.json_summary()
            m.wait()
        finally:
            reap(ws)
    finally:
        m.stop()
    if summary['done'] != n or summary['failed'] != 0:
        raise BenchError('taskq job lost tasks: %r' % summary)
    return summary


def dashboard_job(build, n, workers):
    """taskq_job with --http on and one dashboard stream read throughout."""
    got = {'messages': 0}

    def open_dashboard(m):
        # With --json the banner, the dashboard's URL with it, is in the log.
        deadline = time.monotonic() + 30
        url = None
        while not url and time.monotonic() < deadline and m.proc.poll() is None:
            found = re.search(r'Dashboard: (\S+)', m.log_text())
            url = found.group(1) if found else None
            if not url:
                time.sleep(0.02)
        if not url:
            raise BenchError('task_master --http printed no dashboard URL: ' + m.log_text())

        def read_stream():
            try:
                with urllib.request.urlopen(url + 'events', timeout=30) as r:
                    for line in r:
                        got['messages'] += line.startswith(b'data: ')
            except OSError:
                pass  # the master ended the stream
        threading.Thread(target=read_stream, daemon=True).start()

    summary = taskq_job(build, n, workers, extra=['--http', '127.0.0.1:0'], during=open_dashboard)
    if got['messages'] == 0:
        raise BenchError('the dashboard stream got no snapshot during the job')
    return summary


def taskq_dashboard(build, n, workers, repeat):
    """The same job with and without --http and a dashboard open, taking turns: the cost of the
    dashboard is a few percent, less than what a shared machine drifts in a minute, so each side's
    median comes from runs interleaved with the other's."""
    runs, plain = [], []
    for _ in range(repeat):
        plain.append(taskq_job(build, n, workers))
        runs.append(dashboard_job(build, n, workers))
    return {'tasks': n, 'workers': workers, 'runs': [round(r['tasks_per_s']) for r in runs],
            'tasks_per_s': round(median_of(runs, 'tasks_per_s')),
            'without_runs': [round(r['tasks_per_s']) for r in plain],
            'without_tasks_per_s': round(median_of(plain, 'tasks_per_s'))}


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class NatsCluster:
    """Three nats-server processes routed into one JetStream cluster on
    127.0.0.1 (as deploy/nats, on ports the OS picks), their stores in a
    temporary directory: what task_master --store measures against."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='taskq-bench-nats-')
        server = shutil.which('nats-server') or '/usr/sbin/nats-server'
        if not os.access(server, os.X_OK):
            raise BenchError('nats-server is missing (scripts/install-deps installs it)')
        ports = [(free_port(), free_port()) for _ in range(3)]
        self.urls = ','.join('nats://127.0.0.1:%d' % p for p, _ in ports)
        self.procs, self.logs = [], []
        for i, (port, route) in enumerate(ports):
            routes = ', '.join('nats-route://127.0.0.1:%d' % r for j, (_, r) in enumerate(ports) if j != i)
            conf = os.path.join(self.dir, 'n%d.conf' % (i + 1))
            with open(conf, 'w') as f:
                f.write('server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s" }\n'
                        'cluster { name: bench, listen: 127.0.0.1:%d, routes: [%s] }\n'
                        % (i + 1, port, os.path.join(self.dir, 'n%d' % (i + 1)), route, routes))
            log = os.path.join(self.dir, 'n%d.log' % (i + 1))
            self.logs.append(log)
            self.procs.append(subprocess.Popen([server, '-c', conf, '-l', log]))
        # Ready once a metadata leader is elected (task_master --store also
        # waits for stream placement itself).
        deadline = time.monotonic() + 30
        while not any('new metadata leader' in open(l).read() for l in self.logs if os.path.exists(l)):
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError('the NATS cluster elected no leader within 30 s')
            time.sleep(0.1)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def taskq_throughput(build, n, workers, repeat, extra=()):
    runs = [taskq_job(build, n, workers, extra) for _ in range(repeat)]
    return {'tasks': n, 'workers': workers, 'runs': [round(r['tasks_per_s']) for r in runs],
            'tasks_per_s': round(median_of(runs, 'tasks_per_s')),
            'peak_master_rss_kb': max(r['peak_rss_kb'] for r in runs)}


def taskq_lockstep(build, n, workers):
    s = taskq_job(build, n, workers, ['--in-flight', '1'])
    return {'tasks': n, 'workers': workers, 'p50_us': s['latency_us']['p50'], 'p99_us': s['latency_us']['p99']}


def taskq_client_lockstep(build, n):
    """A separate client process: put, then wait for the result (two network round trips)."""
    m = Master(build, ['--serve'])
    ws = start_workers(build, m.address, 1)
    try:
        m.wait_for_log(' joined ')
        return run_json([os.path.join(build, 'bench', 'taskq_latency'), m.address, str(n)], 120)
    finally:
        m.stop()
        reap(ws)


def memory(build, queued):
    """Master RSS per queued task (a --serve master, put_many), and an idle worker's RSS."""
    m = Master(build, ['--serve'])
    try:
        base = rss_kb(m.proc.pid)
        put = run_json([os.path.join(build, 'bench', 'put_many'), m.address, str(queued)], 600)
        full = rss_kb(m.proc.pid)
        ws = start_workers(build, m.address, 1)
        try:
            m.wait_for_log(' joined ')
            time.sleep(0.5)  # idle for a while: what it holds doing nothing
            worker_rss = rss_kb(ws[0].pid)
        finally:
            for w in ws:
                w.send_signal(signal.SIGINT)
            reap(ws)
    finally:
        m.stop()
    # A square task's payload is its argument: a msgpack integer of 1 to 3 bytes here.
    per_task = (full - base) * 1024.0 / queued
    return {'queued': queued, 'master_rss_kb_empty': base, 'master_rss_kb_full': full,
            'bytes_per_task': round(per_task, 1), 'put_per_s': round(queued / put['seconds']),
            'worker_idle_rss_kb': worker_rss}


def many_workers(build, workers, tasks):
    m = Master(build, ['--serve'])
    try:
        r = run_json([os.path.join(build, 'bench', 'many_workers'), m.address, str(workers), str(tasks)], 300)
        r['master_rss_kb'] = rss_kb(m.proc.pid)
        return r
    finally:
        m.stop()


def basemanager(tasks, workers, latency):
    script = os.path.join(HERE, 'basemanager_bench.py')
    tp = run_json([sys.executable, script, '--tasks', str(tasks), '--workers', str(workers)], 900)
    lat = run_json([sys.executable, script, '--latency', str(latency)], 300)
    return {'tasks': tasks, 'workers': workers, 'tasks_per_s': tp['tasks_per_s'],
            'p50_us': lat['p50_us'], 'p99_us': lat['p99_us']}


def python_package(build, tasks):
    """The Python package (python/taskq): a producer's put_many and one worker
    process, with the python3 that has Debian's python3-zmq and friends."""
    py = '/usr/bin/python3' if os.access('/usr/bin/python3', os.X_OK) else sys.executable
    return run_json([py, os.path.join(HERE, 'python_bench.py'), build, '--tasks', str(tasks)], 600)


def curve_probe(build, round_trips):
    return run_json([os.path.join(build, 'bench', 'curve_probe'), '--round-trips', str(round_trips)], 300)


# --- the report ------------------------------------------------------------------------


def machine():
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpus': os.cpu_count(), 'cpu': model, 'kernel': platform.release(),
            'python': platform.python_version()}


def cpu_times():
    """The 'cpu' line of /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal
    (clock ticks since boot), or None where there is none."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()
        return [int(x) for x in fields[1:9]]
    except (OSError, ValueError, IndexError):
        return None


def stolen_share(before, after):
    """The share of the CPU time between two cpu_times() that the hypervisor gave to other
    machines (steal): on a shared VM the figures of a run move with it, so the report says it."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    d = [b - a for a, b in zip(before, after)]
    return 100.0 * d[7] / sum(d) if sum(d) > 0 else None


def fmt_int(x):
    return '{:,}'.format(int(round(x)))


def table(r):
    bm = r['basemanager']
    rows = [('workload', 'taskq', 'BaseManager', 'ratio')]
    for t in r['throughput']:
        rows.append(('%s square tasks, %d workers (tasks/s)' % (fmt_int(t['tasks']), t['workers']),
                     fmt_int(t['tasks_per_s']), fmt_int(bm['tasks_per_s']),
                     '%.0fx' % (t['tasks_per_s'] / bm['tasks_per_s'])))
    j = r['journal']
    rows.append(('%s tasks, --data-dir --fsync interval (tasks/s)' % fmt_int(j['tasks']),
                 fmt_int(j['tasks_per_s']), fmt_int(bm['tasks_per_s']), '%.0fx' % (j['tasks_per_s'] / bm['tasks_per_s'])))
    if 'store' in r:
        st = r['store']
        rows.append(('%s tasks, --store: 3 NATS servers, R3 (tasks/s)' % fmt_int(st['tasks']),
                     fmt_int(st['tasks_per_s']), fmt_int(bm['tasks_per_s']),
                     '%.0fx' % (st['tasks_per_s'] / bm['tasks_per_s'])))
    ls, raw, cl = r['lockstep'], r['raw_curve'], r['client_lockstep']
    rows.append(('lone task, put -> result p50 (us)', '%.0f' % ls['p50_us'], '%.0f' % bm['p50_us'],
                 '%.2fx' % (ls['p50_us'] / bm['p50_us'])))
    rows.append(('lone task, put -> result p99 (us)', '%.0f' % ls['p99_us'], '%.0f' % bm['p99_us'],
                 '%.2fx' % (ls['p99_us'] / bm['p99_us'])))
    rows.append(('  same, from a separate client process p50 (us)', '%.0f' % cl['p50_us'], '', ''))
    rows.append(('raw ZeroMQ CURVE round trip p50 / p99 (us)', '%.0f / %.0f' % (raw['p50_us'], raw['p99_us']), '', ''))
    mem = r['memory']
    rows.append(('master RSS with %s tasks queued' % fmt_int(mem['queued']),
                 '%.0f MB (%.0f B/task)' % (mem['master_rss_kb_full'] / 1024.0, mem['bytes_per_task']), '', ''))
    rows.append(('peak master RSS, largest job', '%.0f MB' % (max(t['peak_master_rss_kb'] for t in r['throughput']) / 1024.0), '', ''))
    rows.append(('worker idle RSS', '%.1f MB' % (mem['worker_idle_rss_kb'] / 1024.0), '', ''))
    if 'python' in r:
        p = r['python']
        rows.append(('Python: one taskq.Worker process, %s square tasks (tasks/s)' % fmt_int(p['tasks']),
                     fmt_int(p['worker_tasks_per_s']), fmt_int(bm['tasks_per_s']),
                     '%.0fx' % (p['worker_tasks_per_s'] / bm['tasks_per_s'])))
        rows.append(('Python: put_many into the master (tasks/s)', fmt_int(p['put_many_tasks_per_s']), '', ''))
    if 'dashboard' in r:
        d = r['dashboard']
        rows.append(('%s tasks, --http and a dashboard open (tasks/s)' % fmt_int(d['tasks']),
                     fmt_int(d['tasks_per_s']), '', ''))
        rows.append(('  same job without, runs taking turns (tasks/s)', fmt_int(d['without_tasks_per_s']), '', ''))
    mw = r['many_workers']
    rows.append(('%d workers, %s tasks: most any worker got / mean' % (mw['workers'], fmt_int(mw['tasks'])),
                 '%.2f' % mw['max_over_mean'], '', ''))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for k, row in enumerate(rows):
        lines.append('| ' + ' | '.join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                       for i, c in enumerate(row)) + ' |')
        if k == 0:
            lines.append('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def targets(r):
    bm = r['basemanager']
    tp = {t['tasks']: t for t in r['throughput']}
    big = max(tp)
    one_m = tp.get(1000000, tp[big])
    small = min(tp)
    out = []

    def check(name, ok, figure):
        out.append({'target': name, 'met': bool(ok), 'figure': figure})

    check('end to end >= 1,000,000 tasks/s', one_m['tasks_per_s'] >= 1e6,
          '%s tasks/s (%s tasks)' % (fmt_int(one_m['tasks_per_s']), fmt_int(one_m['tasks'])))
    check('end to end >= 150x BaseManager', one_m['tasks_per_s'] >= 150 * bm['tasks_per_s'],
          '%.0fx' % (one_m['tasks_per_s'] / bm['tasks_per_s']))
    ratio = r['lockstep']['p50_us'] / r['raw_curve']['p50_us']
    check('lone task p50 <= 1.2x raw CURVE round trip', ratio <= 1.2, '%.2fx (%.0f vs %.0f us)' % (
        ratio, r['lockstep']['p50_us'], r['raw_curve']['p50_us']))
    ratio = r['lockstep']['p50_us'] / bm['p50_us']
    check('lone task p50 <= 0.6x BaseManager', ratio <= 0.6, '%.2fx (%.0f vs %.0f us)' % (
        ratio, r['lockstep']['p50_us'], bm['p50_us']))
    if big != small:
        s = tp[big]['tasks_per_s'] / tp[small]['tasks_per_s']
        check('tasks/s at %s within 20%% of %s (or better)' % (fmt_int(big), fmt_int(small)), s >= 0.8,
              '%.2fx' % s)
    mem = r['memory']
    check('<= 100 B of master memory per queued task', mem['bytes_per_task'] <= 100,
          '%.0f B' % mem['bytes_per_task'])
    check('worker idle RSS <= 10 MB', mem['worker_idle_rss_kb'] <= 10 * 1024,
          '%.1f MB' % (mem['worker_idle_rss_kb'] / 1024.0))
    mw = r['many_workers']
    check('%d workers, none over 2x the mean' % mw['workers'], mw['max_over_mean'] <= 2.0,
          '%.2f' % mw['max_over_mean'])
    if 'python' in r:
        p = r['python']
        check('one Python worker process >= 50,000 tasks/s', p['worker_tasks_per_s'] >= 50000,
              '%s tasks/s' % fmt_int(p['worker_tasks_per_s']))
        check('Python put_many >= 500,000 tasks/s', p['put_many_tasks_per_s'] >= 500000,
              '%s tasks/s' % fmt_int(p['put_many_tasks_per_s']))
    if 'dashboard' in r:
        d = r['dashboard']
        without = d['without_tasks_per_s']
        check('--http with a dashboard open within 5%% of without (%s tasks, runs taking turns)'
              % fmt_int(d['tasks']), d['tasks_per_s'] >= 0.95 * without,
              '%.1f%% (%s vs %s tasks/s)' % (100.0 * d['tasks_per_s'] / without, fmt_int(d['tasks_per_s']),
                                             fmt_int(without)))
    j = r['journal']
    check('--data-dir --fsync interval >= 30% of in memory', j['tasks_per_s'] >= 0.3 * j['in_memory_tasks_per_s'],
          '%.0f%%' % (100.0 * j['tasks_per_s'] / j['in_memory_tasks_per_s']))
    if 'store' in r:
        st = r['store']
        check('--store (3 NATS servers, R3) >= 50x BaseManager', st['tasks_per_s'] >= 50 * bm['tasks_per_s'],
              '%.0fx; %.0f%% of --data-dir' % (st['tasks_per_s'] / bm['tasks_per_s'],
                                              100.0 * st['tasks_per_s'] / j['tasks_per_s']))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build', help='a Release build with -DTASKQ_BENCH=ON')
    ap.add_argument('--quick', action='store_true', help='a small version, under a minute')
    ap.add_argument('--json', help='where to write the results (default BUILD/bench.json)')
    a = ap.parse_args()
    for tool in ('master/task_master', 'worker/task_worker', 'bench/curve_probe', 'bench/put_many',
                 'bench/many_workers', 'bench/taskq_latency'):
        if not os.access(os.path.join(a.build, tool), os.X_OK):
            sys.exit('bench: %s is missing: build with -DTASKQ_BENCH=ON (make bench does)' % tool)

    if a.quick:
        sizes, repeat, lock_n, bm_tasks, queued, mw, journal_n = [100000, 1000000], 1, 3000, 20000, 1000000, (200, 20000), 1000000
    else:
        sizes, repeat, lock_n, bm_tasks, queued, mw, journal_n = [100000, 1000000, 10000000], 3, 10000, 100000, 10000000, (1000, 100000), 1000000
    W = 2
    r = {'machine': machine(), 'quick': a.quick, 'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    t0 = time.monotonic()
    ticks0 = cpu_times()
    try:
        log('BaseManager: %s tasks, %d workers, then %d lock-step round trips...' % (fmt_int(bm_tasks), W, lock_n))
        r['basemanager'] = basemanager(bm_tasks, W, lock_n)
        r['throughput'] = []
        for n in sizes:
            log('taskq: %s tasks, %d workers, %d run(s)...' % (fmt_int(n), W, repeat))
            r['throughput'].append(taskq_throughput(a.build, n, W, repeat))
        # One at a time, the figures move with where the scheduler puts each
        # thread: taskq and the raw probe take turns, and each gives the
        # median of its runs.
        log('taskq and raw ZeroMQ CURVE: %d round trips one at a time, %d run(s) each...' % (lock_n, repeat))
        raws, locks = [], []
        for _ in range(repeat):
            raws.append(curve_probe(a.build, lock_n))
            locks.append(taskq_lockstep(a.build, lock_n, W))
        r['raw_curve'] = dict(raws[0], runs_p50_us=[x['p50_us'] for x in raws],
                              p50_us=median_of(raws, 'p50_us'), p99_us=median_of(raws, 'p99_us'))
        r['lockstep'] = dict(locks[0], runs_p50_us=[x['p50_us'] for x in locks],
                             p50_us=median_of(locks, 'p50_us'), p99_us=median_of(locks, 'p99_us'))
        r['client_lockstep'] = taskq_client_lockstep(a.build, lock_n)
        log('taskq: %s tasks with a journal (--fsync interval)...' % fmt_int(journal_n))
        data_dir = tempfile.mkdtemp(prefix='taskq-bench-')
        try:
            # --fresh: each run starts the job anew (the first run's outcomes are in the dir).
            j = taskq_throughput(a.build, journal_n, W, repeat, ['--data-dir', data_dir, '--fresh', '--fsync', 'interval'])
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        same = [t for t in r['throughput'] if t['tasks'] == journal_n]
        j['in_memory_tasks_per_s'] = same[0]['tasks_per_s'] if same else r['throughput'][-1]['tasks_per_s']
        r['journal'] = j
        log('taskq: %s tasks with --store on a local three-server NATS cluster (R3)...' % fmt_int(journal_n))
        cluster = NatsCluster()
        try:
            r['store'] = taskq_throughput(a.build, journal_n, W, repeat, ['--store', cluster.urls])
        finally:
            cluster.stop()
        log('taskq: %s tasks with --http and a dashboard stream open and without, %d run(s) each...'
            % (fmt_int(1000000), repeat))
        r['dashboard'] = taskq_dashboard(a.build, 1000000, W, repeat)
        log('taskq: %s tasks queued, memory...' % fmt_int(queued))
        r['memory'] = memory(a.build, queued)
        log('taskq: %d workers...' % mw[0])
        r['many_workers'] = many_workers(a.build, mw[0], mw[1])
        py_n = 200000 if a.quick else 1000000
        log('Python package: put_many and one worker process, %s tasks...' % fmt_int(py_n))
        r['python'] = python_package(a.build, py_n)
    except BenchError as e:
        sys.exit('bench: ' + str(e))
    r['seconds'] = round(time.monotonic() - t0, 1)
    steal = stolen_share(ticks0, cpu_times())
    if steal is not None:
        r['machine']['steal_pct'] = round(steal, 1)
    r['targets'] = targets(r)

    print()
    print('taskq %s, %d CPUs (%s), Linux %s, %s s%s' % (
        'make bench-quick' if a.quick else 'make bench', r['machine']['cpus'], r['machine']['cpu'],
        r['machine']['kernel'], r['seconds'],
        '' if steal is None else '; %.1f%% of the CPU time stolen by the hypervisor (steal)' % steal))
    print()
    print(table(r))
    print()
    for t in r['targets']:
        print('  [%s] %s: %s' % ('met' if t['met'] else 'NOT met', t['target'], t['figure']))
    out = a.json or os.path.join(a.build, 'bench.json')
    with open(out, 'w') as f:
        json.dump(r, f, indent=2)
    print('\nbench: the same as JSON in %s' % out)


if __name__ == '__main__':
    main()
