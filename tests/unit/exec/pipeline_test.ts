import assert from "node:assert/strict";
import { CommandError, ZfsError } from "../../../lib/base/errors.ts";
import { spawnPipeline } from "../../../lib/exec/pipeline.ts";

const zfsError = (m: string, stderr: string) => new ZfsError(m, { stderr });
const commandError = (m: string) => new CommandError(m);

/** Where `/proc/PID/fd/N` points (a pipe reads `pipe:[INODE]`). */
function fdTarget(pid: number, fd: number): string {
  return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
}

function alive(pid: number): boolean {
  try {
    // A zombie still has /proc/PID; its state letter is Z.
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** The PIDs of this process's children. */
function ourChildren(): number[] {
  return [...Deno.readDirSync(`/proc/${Deno.pid}/task`)].flatMap((t) =>
    Deno.readTextFileSync(`/proc/${Deno.pid}/task/${t.name}/children`).trim().split(/\s+/)
      .filter(Boolean).map(Number)
  );
}

Deno.test("spawnPipeline() pipes the first child's stdout into the second's stdin", async () => {
  const p = await spawnPipeline([
    { argv: ["head", "-c", "3000000", "/dev/zero"] },
    { argv: ["wc", "-c"] },
  ]);
  const out = await new Response(p.stdout).text();
  await p.done;
  assert.equal(out.trim(), "3000000");
});

Deno.test("spawnPipeline() gives both children the same pipe, which z3 does not hold", async () => {
  const p = await spawnPipeline([{ argv: ["sleep", "5"] }, { argv: ["cat"] }]);
  try {
    const pipe = fdTarget(p.pids[0], 1);
    assert.match(pipe, /^pipe:\[\d+\]$/);
    assert.equal(fdTarget(p.pids[1], 0), pipe, "the second's stdin is the first's stdout");
    const own = [...Deno.readDirSync("/proc/self/fd")].map((e) => {
      try {
        return fdTarget(Deno.pid, Number(e.name));
      } catch {
        return "";
      }
    });
    assert.ok(!own.includes(pipe), "z3 keeps no end of the pipe between the children");
  } finally {
    p.kill();
    await p.stdout.cancel();
    await p.done.catch(() => {});
  }
});

Deno.test("spawnPipeline() passes the clean environment to both stages", async () => {
  Deno.env.set("Z3_PIPELINE_SECRET", "leak");
  try {
    const p = await spawnPipeline([{ argv: ["env"] }, { argv: ["cat"] }]);
    const out = await new Response(p.stdout).text();
    await p.done;
    assert.deepEqual(out.trim().split("\n").sort(), ["LC_ALL=C", `PATH=${Deno.env.get("PATH")}`]);
  } finally {
    Deno.env.delete("Z3_PIPELINE_SECRET");
  }
});

Deno.test("spawnPipeline() rejects with the first stage's typed error and stderr tail", async () => {
  const p = await spawnPipeline([
    { argv: ["ls", "/nonexistent-z3-path"], makeError: zfsError },
    { argv: ["cat"], makeError: commandError },
  ]);
  await new Response(p.stdout).arrayBuffer();
  const err = await p.done.then(() => undefined, (e) => e);
  assert.ok(err instanceof ZfsError, String(err));
  assert.match(err.message, /^Command failed \(exit status 2\): ls \/nonexistent-z3-path: .*/);
  assert.match(err.stderr, /nonexistent-z3-path/);
  assert.match(p.stderrTail(0), /nonexistent-z3-path/);
  assert.equal(p.stderrTail(1), "");
});

Deno.test("spawnPipeline() rejects with the second stage's error when it fails first", async () => {
  // `false` exits at once; `yes` then dies of SIGPIPE, after it: the cause is `false`.
  const p = await spawnPipeline([
    { argv: ["yes"], makeError: zfsError },
    { argv: ["false"], makeError: commandError },
  ]);
  await new Response(p.stdout).arrayBuffer();
  const err = await p.done.then(() => undefined, (e) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.message, "Command failed (exit status 1): false");
});

Deno.test("spawnPipeline() fails when the first stage dies of SIGPIPE (both must exit 0)", async () => {
  const p = await spawnPipeline([{ argv: ["yes"] }, { argv: ["head", "-c", "10"] }]);
  assert.equal(await new Response(p.stdout).text(), "y\ny\ny\ny\ny\n");
  await assert.rejects(p.done, /Command failed \(killed by SIGPIPE\): yes/);
});

Deno.test("spawnPipeline() kills both children on abort", async () => {
  const stop = new AbortController();
  const p = await spawnPipeline([{ argv: ["sleep", "30"] }, { argv: ["sleep", "30"] }], {
    signal: stop.signal,
  });
  assert.ok(p.pids.every(alive));
  stop.abort();
  await assert.rejects(p.done, /killed by SIGTERM/);
  await p.stdout.cancel();
  assert.ok(!p.pids.some(alive), "no child left running");
});

Deno.test("spawnPipeline() names a stage that cannot start and leaves no child", async () => {
  await assert.rejects(
    () =>
      spawnPipeline([
        { argv: ["sleep", "30"] },
        { argv: ["z3-no-such-command"], makeError: commandError },
      ]),
    (e) =>
      e instanceof CommandError && e.message === "Cannot run z3-no-such-command: command not found",
  );
  // The first stage, started before the second failed, was killed.
  for (let i = 0; i < 50 && ourChildren().some(alive); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(ourChildren().filter(alive), []);
  await assert.rejects(
    () => spawnPipeline([{ argv: ["z3-no-such-command"], makeError: zfsError }, { argv: ["cat"] }]),
    (e) => e instanceof ZfsError && /command not found/.test(e.message),
  );
});

Deno.test("spawnPipeline() names the permission flag a stage lacks", async () => {
  const script = `
    import { spawnPipeline } from ${
    JSON.stringify(new URL("../../../lib/exec/pipeline.ts", import.meta.url).href)
  };
    try {
      await spawnPipeline([{ argv: ["head", "-c", "1", "/dev/zero"] }, { argv: ["wc"] }]);
    } catch (err) {
      console.log(err.message);
    }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-env", "--allow-read", "--allow-run=head", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { stdout } = await out.output();
  assert.equal(
    new TextDecoder().decode(stdout).trim(),
    'Cannot run wc: not permitted: Deno needs run access to "wc"; grant it with --allow-run=wc',
  );
});
