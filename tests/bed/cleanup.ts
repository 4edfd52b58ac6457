/**
 * Test-bed helper: runs a test body, then its cleanups, so that a failing cleanup never hides the
 * test's own failure. `try { … } finally { await pool.destroy(); }` throws the cleanup's error and
 * loses the test's; {@linkcode withCleanup} keeps the first error and reports both.
 *
 * @module
 */

/** What one cleanup step does; run even when the body or an earlier step failed. */
export type Cleanup = () => void | Promise<void>;

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Runs `body`, then every cleanup in order (each one even when an earlier one failed). The
 * first error (the body's, else the first cleanup's) is rethrown as itself; later errors are
 * appended to its message, so the test report shows them all. Written like `try`/`finally`:
 * `await withCleanup([() => pool.destroy()], async () => { … })`.
 */
export async function withCleanup<T>(cleanups: Cleanup[], body: () => Promise<T>): Promise<T> {
  const errors: unknown[] = [];
  let result: T | undefined;
  try {
    result = await body();
  } catch (err) {
    errors.push(err);
  }
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 0) return result as T;
  const [first, ...later] = errors;
  if (later.length > 0) {
    const also = later.map((e) => `\nand then a cleanup failed too: ${describe(e)}`).join("");
    if (first instanceof Error) first.message += also;
    else throw new Error(`${describe(first)}${also}`);
  }
  throw first;
}
