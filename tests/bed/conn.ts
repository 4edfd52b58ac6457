/**
 * Socket helpers shared by the test proxies (fault_proxy, rude_proxy, rewrite_proxy).
 *
 * @module
 */

/** Writes every byte: `Conn.write` may write fewer than it is given. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Closes `conn`, ignoring that it may already be closed. */
export function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch { /* already closed */ }
}
