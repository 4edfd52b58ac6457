import assert from "node:assert/strict";
import { run, RunTimeout, underCI } from "../../bed/run.ts";
import { spawnCli } from "../../bed/cli.ts";

Deno.test("underCI() is true for any CI value runners set, false when unset or off", () => {
  const saved = Deno.env.get("CI");
  try {
    for (const value of ["true", "True", "TRUE", "1", "yes", " true "]) {
      Deno.env.set("CI", value);
      assert.equal(underCI(), true, `CI=${JSON.stringify(value)}`);
    }
    for (const value of ["", "0", "false", "False", "no", "off"]) {
      Deno.env.set("CI", value);
      assert.equal(underCI(), false, `CI=${JSON.stringify(value)}`);
    }
    Deno.env.delete("CI");
    assert.equal(underCI(), false, "CI unset");
  } finally {
    if (saved === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", saved);
  }
});

Deno.test("run() gives up on a command past its deadline, naming it, without waiting for it", async () => {
  const t0 = performance.now();
  await assert.rejects(run(["sleep", "30"], { timeoutMs: 300 }), (err: Error) => {
    assert.ok(err instanceof RunTimeout, String(err));
    assert.equal(err.message, "sleep 30 did not finish within 0.3 s");
    return true;
  });
  assert.ok(performance.now() - t0 < 10_000, "it did not wait for sleep 30");
});

Deno.test("run() runs the bed's zfs commands one at a time, and none after one hung", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-fake-zfs-" });
  try {
    // A fake zfs: logs its start and end around a short sleep (or a long one for "hang").
    const zfs = `${dir}/zfs`;
    await Deno.writeTextFile(
      zfs,
      `#!/bin/sh\necho "start $1" >> '${dir}/log'\nif [ "$1" = hang ]; then sleep 30; else sleep 0.2; fi\necho "end $1" >> '${dir}/log'\n`,
    );
    await Deno.chmod(zfs, 0o755);
    await Promise.all([
      run([zfs, "a"]),
      run([zfs, "b"]),
      run([`${dir}/zpool`, "c"]).catch(() => {}),
    ]);
    assert.deepEqual((await Deno.readTextFile(`${dir}/log`)).trim().split("\n"), [
      "start a",
      "end a",
      "start b",
      "end b",
    ]);
    const hung = run([zfs, "hang"], { timeoutMs: 300 });
    const after = run([zfs, "later"]);
    await assert.rejects(hung, RunTimeout);
    await assert.rejects(
      after,
      /^Error: .*zfs later not run: zfs-fuse is wedged since .*zfs hang hung$/,
    );
    assert.ok(!(await Deno.readTextFile(`${dir}/log`)).includes("later"), "zfs later never ran");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a z3 child past its deadline is stopped, and its result names it with its stderr so far", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-hang-" });
  try {
    const script = `${dir}/hang.ts`;
    await Deno.writeTextFile(
      script,
      'console.error("waiting for zfs");\nsetInterval(() => {}, 1000);\n',
    );
    const child = spawnCli(script, ["backup"], { timeoutMs: 5_000 });
    await assert.rejects(
      child.result,
      new RegExp(
        `^Error: ${script} backup did not exit within 5 s; stderr so far: waiting for zfs$`,
      ),
    );
    // SIGTERM ended it: a check on its pid finds no process.
    await new Promise((r) => setTimeout(r, 500));
    assert.throws(() => Deno.kill(child.pid, "SIGCONT"), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
