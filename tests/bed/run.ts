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

/** True when running under CI, where a skipped integration test is a failure. */
export function underCI(): boolean {
  return Deno.env.get("CI") === "true";
}
