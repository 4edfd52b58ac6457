/**
 * Says why the OpenZFS guest of a run dir cannot answer: no guest started, its QEMU gone (with
 * the last lines of its console), or its broker gone (with its log's last line).
 *
 * @module
 */

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // A zombie (state Z) has exited; it only waits for its parent to reap it.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function tail(text: string, lines: number): string {
  return text.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l).slice(-lines).join(" | ");
}

/** A one-line reason the guest whose state is in `runDir` cannot run a command. */
export function openzfsVmWhy(runDir: string): string {
  const qemu = parseInt(readText(`${runDir}/guest.pid`).trim());
  if (!qemu) return `no OpenZFS guest is running (nothing in ${runDir}): run openzfs_vm.sh start`;
  const console = tail(readText(`${runDir}/console.log`), 3);
  if (!alive(qemu)) {
    return `the OpenZFS guest's QEMU (pid ${qemu}) is gone: crashed or killed; ` +
      `its console ended: ${console || "(empty)"}`;
  }
  const broker = parseInt(readText(`${runDir}/broker.pid`).trim());
  if (!broker || !alive(broker)) {
    return `the OpenZFS guest's broker (pid ${broker || "?"}) is gone: ` +
      `${
        tail(readText(`${runDir}/broker.log`), 1) || "no log"
      }; run openzfs_vm.sh stop, then start`;
  }
  return `the OpenZFS guest (QEMU pid ${qemu}) does not answer; its console ends: ${console}`;
}
