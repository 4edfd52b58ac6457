/**
 * Test-bed helper: runs a setup command (argv array) and returns its stdout; on failure the
 * error carries the command's stderr. Test code only; the product runs children via lib/.
 *
 * @module
 */

/** Runs `argv` to completion; throws with stderr on a non-zero exit. */
export async function run(argv: string[], options: { allowFail?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success && !options.allowFail) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${argv.join(" ")} failed (${out.code}): ${stderr}`);
  }
  return stdout;
}

/** True when running as root. */
export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/**
 * True when running under CI, where a skipped integration test is a failure. Any `CI` value but
 * unset, empty, `0`, `false`, `no` or `off` (in any case) counts: runners set `CI=1` or `CI=True`
 * as often as `CI=true`.
 */
export function underCI(): boolean {
  const value = (Deno.env.get("CI") ?? "").trim().toLowerCase();
  return !["", "0", "false", "no", "off"].includes(value);
}

/** Where `name` is found on PATH, or undefined when it is not there. */
export async function commandPath(name: string): Promise<string | undefined> {
  const out = await run(["sh", "-c", 'command -v "$1"', "sh", name], { allowFail: true });
  return out.trim() || undefined;
}
