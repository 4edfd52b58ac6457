import assert from "node:assert/strict";
import { failure } from "../../bed/expect.ts";
import { runZ3 } from "../../bed/cli.ts";
import { LockedError } from "../../../lib/base/errors.ts";
import { acquireBackupLock, lockFileName } from "../../../lib/zfs/host_lock.ts";

Deno.test("acquireBackupLock() refuses a second holder, names the pid, and is released", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-locks-" });
  try {
    assert.equal(lockFileName("pool/my data"), "backup-pool%2Fmy%20data.lock");
    const first = acquireBackupLock("pool/my data", { dir });
    assert.equal(first.path, `${dir}/backup-pool%2Fmy%20data.lock`);
    assert.equal((await Deno.readTextFile(first.path)).trim(), String(Deno.pid));
    assert.throws(
      () => acquireBackupLock("pool/my data", { dir }),
      (err: unknown) =>
        err instanceof LockedError && err.exitCode === 8 &&
        err.message ===
          `Cannot back up "pool/my data": another z3 run (pid ${Deno.pid}) is running; ` +
            `lock file ${first.path}`,
    );
    const other = acquireBackupLock("pool/my data2", { dir }); // another dataset: no conflict
    other.release();
    first.release();
    first.release(); // twice is harmless
    await assert.rejects(Deno.stat(first.path), Deno.errors.NotFound);
    acquireBackupLock("pool/my data", { dir }).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("z3 backup without write access to the lock directory names it and the flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-locks-" });
  try {
    const result = await runZ3(["backup"], {
      BUCKET: "b",
      FILESYSTEM: "pool/my data",
      Z3_LOCK_DIR: dir,
    }, {
      permissions: ["--allow-read", "--allow-env", "--allow-sys", "--allow-run", "--allow-net"],
    });
    failure(
      result,
      2,
      new RegExp(
        `^z3: Cannot take the backup lock in "${dir}": not permitted: .*` +
          `grant it with --allow-read=${dir} --allow-write=${dir} `,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
