/**
 * Runs one command in the OpenZFS guest as if it were local: argv exact, stdin forwarded until
 * it ends, stdout and stderr written as they come, and the guest command's exit status as this
 * process's. SIGINT, SIGTERM and SIGHUP are forwarded to the command. When the guest cannot run
 * it, says why on stderr (`openzfs_vm: …`) and exits 255.
 *
 * Usage: `deno run --allow-all openzfs_vm_client.ts RUN_DIR ARGV…` (through `openzfs_vm.sh`).
 *
 * @module
 */

import { FrameConn } from "./openzfs_vm_frames.ts";
import { openzfsVmWhy } from "./openzfs_vm_why.ts";

const [runDir, ...argv] = Deno.args;
const enc = (s: string) => new TextEncoder().encode(s);

function fail(why: string): never {
  try {
    Deno.stderr.writeSync(enc(`openzfs_vm: ${why}\n`));
  } catch { /* nowhere to say it */ }
  Deno.exit(255);
}

async function writeAll(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await to.write(bytes.subarray(at));
}

if (!runDir || argv.length === 0) fail("usage: openzfs_vm_client.ts RUN_DIR ARGV…");
let conn: Deno.Conn;
try {
  conn = await Deno.connect({ transport: "unix", path: `${runDir}/broker.sock` });
} catch {
  fail(openzfsVmWhy(runDir));
}
const guest = new FrameConn(conn);
await guest.write("E", FrameConn.argv(argv)).catch(() => fail(openzfsVmWhy(runDir)));

const signals: [Deno.Signal, number][] = [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]];
for (const [name, number] of signals) {
  Deno.addSignalListener(name, () => {
    guest.write("K", enc(String(number))).catch(() => {});
  });
}

(async () => {
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      await guest.write("I", buf.slice(0, n));
    }
  } catch { /* an unreadable stdin counts as closed */ }
  await guest.write("C").catch(() => {});
})();

for (;;) {
  const frame = await guest.read().catch(() => null);
  if (!frame) {
    fail(`the guest's connection closed before the command ended: ${openzfsVmWhy(runDir)}`);
  }
  if (frame.kind === "O" || frame.kind === "R") {
    try {
      await writeAll(frame.kind === "O" ? Deno.stdout : Deno.stderr, frame.payload);
    } catch {
      // Our reader went away (SIGPIPE's case): leaving ends the command in the guest too.
      Deno.exit(141);
    }
  } else if (frame.kind === "X") {
    Deno.exit(parseInt(new TextDecoder().decode(frame.payload)));
  } else if (frame.kind === "F") {
    fail(new TextDecoder().decode(frame.payload));
  }
}
