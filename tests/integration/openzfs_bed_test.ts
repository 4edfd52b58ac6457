/**
 * The OpenZFS guest itself (`tests/bed/openzfs_vm.sh`): argv kept exact, exit statuses and
 * signals passed back, 100 MB streamed byte-exact both ways, four commands at once, a client
 * killed mid-command, a guest that cannot boot and a guest that crashes. Each test touches only
 * pools it made; the first and the last test check that a pool made before them was left alone.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { withCleanup } from "../bed/cleanup.ts";
import { pseudoRandom } from "../bed/files.ts";
import {
  guest,
  type GuestPool,
  guestPool,
  guestText,
  OPENZFS_VM,
  OPENZFS_ZFS,
  openzfsTest,
} from "../bed/openzfs_bed.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A pool made before the other tests and checked after them: nothing of theirs touched it. */
let bystander: { pool: GuestPool; guid: string; history: string } | undefined;

async function history(pool: string): Promise<string> {
  return await guestText(["zpool", "history", pool]);
}

openzfsTest("openzfs_vm.sh: a pool made before the other tests (checked at the end)", async () => {
  const pool = await guestPool({ name: "bystander", sizeMiB: 128 });
  const guid = (await guestText(["zpool", "get", "-H", "-o", "value", "guid", pool.name])).trim();
  bystander = { pool, guid, history: await history(pool.name) };
});

openzfsTest(
  "openzfs_vm.sh run keeps argv exact (spaces, @, #, %, quotes, empty, UTF-8)",
  async () => {
    const argv = [
      "a b",
      "@x",
      "#y",
      "%z %s",
      "",
      "quote'\"`$HOME",
      "back\\slash",
      "ünï €",
      "-n",
      "*",
    ];
    const out = await guest(["run", "printf", "%s\\0", ...argv]);
    assert.deepEqual(text(out.stdout).split("\0").slice(0, -1), argv);
  },
);

openzfsTest("openzfs_vm.sh zfs keeps dataset, snapshot and bookmark names exact", async () => {
  const pool = await guestPool();
  await withCleanup([() => pool.destroy()], async () => {
    const fs = `${pool.name}/with space`;
    await guest(["zfs", "create", fs]);
    await guest(["zfs", "snapshot", `${fs}@snap 1`]);
    await guest(["zfs", "bookmark", `${fs}@snap 1`, `${fs}#mark 1`]);
    const names = await guestText(["zfs", "list", "-H", "-t", "all", "-o", "name", "-r", fs]);
    assert.deepEqual(names.trimEnd().split("\n"), [fs, `${fs}@snap 1`, `${fs}#mark 1`]);
    // Through the Z3_ZFS_COMMAND wrapper too, and zfs's own error text with a '%' in it.
    const bad = await new Deno.Command(OPENZFS_ZFS, {
      args: ["create", `${pool.name}/x%y`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 1);
    assert.match(text(bad.stderr), new RegExp(`^cannot create '${pool.name}/x%y': .*%`, "m"));
  });
});

openzfsTest("openzfs_vm.sh passes exit statuses and signals back", async () => {
  for (const status of [0, 1, 2, 3, 42, 255]) {
    const out = await guest(["run", "sh", "-c", `exit ${status}`], { allowFail: true });
    assert.equal(out.code, status, `exit ${status}: ${out.stderr}`);
  }
  const missing = await guest(["run", "/no/such/command"], { allowFail: true });
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /cannot run '\/no\/such\/command'/);
  const killed = await guest(["run", "sh", "-c", "kill -TERM $$"], { allowFail: true });
  assert.equal(killed.code, 128 + 15);
  const both = await guest(["run", "sh", "-c", "echo out; echo err >&2; exit 3"], {
    allowFail: true,
  });
  assert.deepEqual([both.code, text(both.stdout), both.stderr], [3, "out\n", "err\n"]);
});

openzfsTest("openzfs_vm.sh streams 100 MB through the guest byte-exact both ways", async () => {
  const size = 100 * 1000 * 1000;
  const data = pseudoRandom(size, 30);
  const file = `/var/tmp/z3-bed-stream-${crypto.randomUUID()}`;
  const t0 = performance.now();
  // tee keeps a copy in the guest, whose sha256 the guest computes itself.
  const out = await guest(
    ["run", "sh", "-c", 'tee "$1" && sha256sum "$1" >&2 && rm -f "$1"', "sh", file],
    { stdin: data, timeoutMs: 600_000 },
  );
  const seconds = (performance.now() - t0) / 1000;
  console.error(`100 MB in and out in ${seconds.toFixed(1)} s`);
  assert.equal(out.stdout.length, size);
  const want = sha256(data);
  assert.equal(sha256(out.stdout), want);
  assert.equal(out.stderr.split(" ")[0], want);
});

openzfsTest("openzfs_vm.sh runs four commands at once", async () => {
  const t0 = performance.now();
  const inputs = [1, 2, 3, 4].map((i) => pseudoRandom(2 * 1024 * 1024, i));
  const results = await Promise.all(
    inputs.map((input, i) =>
      guest(["run", "sh", "-c", `sleep 3; sha256sum; echo ${i} >&2`], { stdin: input })
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  results.forEach((r, i) => {
    assert.equal(text(r.stdout).split(" ")[0], sha256(inputs[i]));
    assert.equal(r.stderr, `${i}\n`);
  });
  // One at a time would take 12 s of sleeping alone.
  assert.ok(seconds < 11, `four 3 s commands took ${seconds.toFixed(1)} s: not concurrent`);
});

openzfsTest(
  "openzfs_vm.sh forwards SIGTERM, and a killed client leaves nothing running",
  async () => {
    const marker = `z3bed${crypto.randomUUID().slice(0, 8)}`;
    const spawn = () =>
      new Deno.Command(OPENZFS_VM, {
        args: ["run", "sh", "-c", `sleep 300; echo ${marker}`],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const running = async () =>
      (await guest(["run", "pgrep", "-f", `sleep 300; echo ${marker}`], { allowFail: true }))
        .code ===
        0;
    const waitFor = async (want: boolean) => {
      for (let i = 0; i < 60 && await running() !== want; i++) {
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(await running(), want);
    };
    // openzfs_vm.sh execs the client: the pid is the client's.
    const term = spawn();
    await waitFor(true);
    term.kill("SIGTERM");
    const termed = await term.output();
    assert.equal(termed.code, 128 + 15);
    await waitFor(false);
    const killed = spawn();
    await waitFor(true);
    killed.kill("SIGKILL");
    await killed.output();
    await waitFor(false);
    // Every port is usable afterwards.
    const all = await Promise.all(
      Array.from({ length: 10 }, () => guestText(["run", "echo", "ok"])),
    );
    assert.deepEqual(all, Array(10).fill("ok\n"));
  },
);

openzfsTest("openzfs_vm.sh sends a real encrypted dataset raw and loads its key", async () => {
  const pool = await guestPool();
  await withCleanup([() => pool.destroy()], async () => {
    const passphrase = new TextEncoder().encode("correct horse battery\n");
    const src = `${pool.name}/secret`;
    await guest([
      "zfs",
      "create",
      "-o",
      "encryption=on",
      "-o",
      "keyformat=passphrase",
      "-o",
      "keylocation=prompt",
      src,
    ], { stdin: passphrase });
    const payload = pseudoRandom(3 * 1024 * 1024, 7);
    await guest(["run", "tee", `/${src}/file`], { stdin: payload });
    await guest(["zfs", "snapshot", `${src}@s1`]);
    const stream = (await guest(["zfs", "send", "-w", `${src}@s1`])).stdout;
    // Raw: the payload's bytes are not in the stream.
    assert.equal(Buffer.from(stream).indexOf(Buffer.from(payload.subarray(0, 64))), -1);
    const dst = `${pool.name}/copy`;
    await guest(["zfs", "receive", dst], { stdin: stream });
    const keystatus = ["zfs", "get", "-H", "-o", "value", "keystatus", dst];
    assert.equal((await guestText(keystatus)).trim(), "unavailable");
    await guest(["zfs", "load-key", dst], { stdin: passphrase });
    await guest(["zfs", "mount", dst]);
    const back = await guest(["run", "cat", `/${dst}/file`]);
    assert.equal(sha256(back.stdout), sha256(payload));
  });
});

openzfsTest(
  "openzfs_vm.sh start fails at once, naming the build's last line, when a build fails",
  async () => {
    // A fresh cache and a stand-in mmdebstrap that fails as one without a mirror would.
    const dir = await Deno.makeTempDir({ prefix: "z3-openzfs-nobuild-" });
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/mmdebstrap`,
      "#!/bin/sh\necho 'I: running apt-get update...'\n" +
        "echo 'E: apt-get update failed: cannot reach deb.debian.org' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    const env = {
      ZVM_CACHE: `${dir}/cache`,
      ZVM_RUN_DIR: `${dir}/run`,
      PATH: `${dir}/bin:${Deno.env.get("PATH")}`,
    };
    await withCleanup([() => Deno.remove(dir, { recursive: true })], async () => {
      const out = await guest(["start"], { env, allowFail: true, timeoutMs: 60_000 });
      assert.equal(out.code, 1);
      assert.equal(text(out.stdout), "");
      assert.match(
        out.stderr,
        /building the (trixie|bookworm) guest failed: E: apt-get update failed: cannot reach deb\.debian\.org \(log: .*build\.log\)/,
      );
    });
  },
);

openzfsTest("openzfs_vm.sh start fails fast, naming why, when the guest cannot boot", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "z3-openzfs-noboot-" });
  // One try: a guest that cannot boot is not tried again (ZVM_BOOT_TRIES), so it fails fast.
  const env = {
    ZVM_RUN_DIR: runDir,
    ZVM_APPEND: "init=/bin/false",
    ZVM_BOOT_TIMEOUT: "240",
    ZVM_BOOT_TRIES: "1",
  };
  await withCleanup([
    () => guest(["stop"], { env }).then(() => {}),
    () => Deno.remove(runDir, { recursive: true }),
  ], async () => {
    const t0 = performance.now();
    const out = await guest(["start"], { env, allowFail: true, timeoutMs: 300_000 });
    const seconds = (performance.now() - t0) / 1000;
    console.error(`a guest that cannot boot failed after ${seconds.toFixed(1)} s`);
    assert.equal(out.code, 1);
    assert.equal(text(out.stdout), "");
    assert.match(
      out.stderr,
      /the guest did not boot: QEMU exited after \d+ s; console: .*Kernel panic .*Attempted to kill init/,
    );
    // It fails when QEMU exits, not when the boot's deadline (240 s here) runs out.
    assert.ok(seconds < 120, `took ${seconds.toFixed(0)} s`);
  });
});

openzfsTest("openzfs_vm.sh notices a crashed guest, mid-command and after", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "z3-openzfs-crash-" });
  const env = { ZVM_RUN_DIR: runDir, ZVM_PORTS: "2" };
  await withCleanup([
    () => guest(["stop"], { env }).then(() => {}),
    () => Deno.remove(runDir, { recursive: true }),
  ], async () => {
    await guest(["start"], { env, timeoutMs: 600_000 });
    const qemu = parseInt(await Deno.readTextFile(`${runDir}/guest.pid`));
    const long = guest(["run", "sleep", "300"], { env, allowFail: true });
    await new Promise((r) => setTimeout(r, 2000));
    Deno.kill(qemu, "SIGKILL");
    const t0 = performance.now();
    const during = await long;
    assert.ok(performance.now() - t0 < 10_000, "the running command was not ended at once");
    assert.equal(during.code, 255);
    assert.match(during.stderr, new RegExp(`QEMU \\(pid ${qemu}\\) is gone: crashed or killed`));
    const after = await guest(["zfs", "list"], { env, allowFail: true });
    assert.equal(after.code, 255);
    assert.match(after.stderr, new RegExp(`QEMU \\(pid ${qemu}\\) is gone: crashed or killed`));
  });
});

openzfsTest("openzfs_vm.sh tests left the pool made before them alone", async () => {
  assert.ok(bystander, "the first test made no pool");
  const { pool, guid } = bystander;
  await withCleanup([() => pool.destroy()], async () => {
    const now = (await guestText(["zpool", "get", "-H", "-o", "value", "guid", pool.name])).trim();
    assert.equal(now, guid);
    assert.equal(await history(pool.name), bystander!.history);
  });
});
