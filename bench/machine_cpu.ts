/**
 * CPU seconds the test bed's daemons and the whole machine have used so far, for the benchmarks:
 * the Ceph daemons (radosgw, ceph-osd, ceph-mon, from the S3 bed's PID files), zfs-fuse (from its
 * pidfile), and every core of the machine (`/proc/stat`). A row's CPU is the difference of two
 * readings; a process's user + sys from `/proc/PID/stat` covers all its threads.
 *
 * @module
 */

import { run } from "../tests/bed/run.ts";

const S3_STATE_DIR = Deno.env.get("Z3_S3_STATE_DIR") || "/var/tmp/z3-s3-bed";
const ZFS_FUSE_PIDFILE = "/var/run/zfs-fuse.pid";

/** One reading. Figures are NaN where they cannot be read. */
export interface CpuReading {
  /** radosgw + ceph-osd + ceph-mon, user + sys seconds. */
  ceph: number;
  /** The zfs-fuse daemon, user + sys seconds. */
  zfsFuse: number;
  /** Every core's busy time (user, nice, system, irq, softirq, steal) in seconds. */
  machine: number;
}

/** The machine's clock ticks per second and its cores. */
export interface CpuClock {
  ticks: number;
  cores: number;
}

/** Ticks per second (`getconf CLK_TCK`) and the number of cores (`/proc/stat`). */
export async function cpuClock(): Promise<CpuClock> {
  // Without getconf: Linux's USER_HZ, 100.
  const n = Number((await run(["getconf", "CLK_TCK"]).catch(() => "")).trim());
  const ticks = n > 0 ? n : 100;
  const stat = await Deno.readTextFile("/proc/stat");
  const cores = stat.split("\n").filter((l) => /^cpu\d+ /.test(l)).length || 1;
  return { ticks, cores };
}

async function pidFrom(file: string): Promise<number | undefined> {
  const pid = Number((await Deno.readTextFile(file).catch(() => "")).trim());
  return pid > 0 ? pid : undefined;
}

async function processTicks(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

/** The CPU seconds used so far (module doc). */
export async function readCpu(clock: CpuClock): Promise<CpuReading> {
  let ceph = 0;
  for (const name of ["rgw", "osd", "mon"]) {
    ceph += await processTicks(await pidFrom(`${S3_STATE_DIR}/${name}.pid`));
  }
  const zfsFuse = await processTicks(await pidFrom(ZFS_FUSE_PIDFILE));
  const total = (await Deno.readTextFile("/proc/stat")).split("\n")[0].trim().split(/\s+/);
  // cpu user nice system idle iowait irq softirq steal ...
  const busy = [1, 2, 3, 6, 7, 8].reduce((sum, i) => sum + Number(total[i] ?? 0), 0);
  return {
    ceph: ceph / clock.ticks,
    zfsFuse: zfsFuse / clock.ticks,
    machine: busy / clock.ticks,
  };
}

/** What was used between two readings. */
export function cpuUsed(before: CpuReading, after: CpuReading): CpuReading {
  return {
    ceph: after.ceph - before.ceph,
    zfsFuse: after.zfsFuse - before.zfsFuse,
    machine: after.machine - before.machine,
  };
}
