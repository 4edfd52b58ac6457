/**
 * The OpenZFS guest's broker: holds one permanent connection to each of the guest's
 * virtio-serial ports and hands them to clients (`openzfs_vm_client.ts`) that connect to
 * `RUN_DIR/broker.sock`, one command per port at a time, queueing the rest.
 *
 * Why a broker: a second connection to a serial-port socket waits in QEMU's backlog and later
 * corrupts the stream, and a port drops the bytes in flight when the host side closes it. So
 * connections to the ports are never closed while the guest runs.
 *
 * A port is handed out once its agent has said hello (`H`). After the agent's `X` the broker
 * forwards it, closes the client and sends `D`. A client that goes away before `X` gets its
 * command killed (`K 9`); the port is free again once the `X` arrives. When a port's socket
 * closes (QEMU gone) every client is told why (`F`) and the broker exits.
 *
 * With IDLE_SECONDS > 0, the broker stops the guest (`openzfs_vm.sh stop`, detached) once no
 * client has been connected for that long: the test bed starts guests that way, so that the next
 * test file finds the guest still up and the last one leaves nothing running for long.
 *
 * Usage: `deno run --allow-all openzfs_vm_broker.ts RUN_DIR PORTS [IDLE_SECONDS]`
 *
 * @module
 */

import { FrameConn } from "./openzfs_vm_frames.ts";
import { openzfsVmWhy } from "./openzfs_vm_why.ts";

interface Session {
  client: FrameConn;
  /** The agent's `X` has come: nothing more of this client goes to the port. */
  done: boolean;
}

interface Port {
  index: number;
  conn: FrameConn;
  session?: Session;
}

const [runDir, portsArg, idleArg] = Deno.args;
const idleMs = 1000 * Number(idleArg ?? 0);
const count = parseInt(portsArg ?? "");
if (!runDir || !(count > 0)) {
  console.error("usage: openzfs_vm_broker.ts RUN_DIR PORTS");
  Deno.exit(2);
}
const enc = (s: string) => new TextEncoder().encode(s);

const free: Port[] = [];
const waiting: { resolve: (p: Port) => void; reject: (e: Error) => void }[] = [];
const ports: Port[] = [];
let dead: string | undefined;
/** Clients connected now, and when the last one left. */
let clients = 0;
let idleSince = Date.now();

function release(port: Port): void {
  const next = waiting.shift();
  if (next) next.resolve(port);
  else free.push(port);
}

function acquire(): Promise<Port> {
  if (dead) return Promise.reject(new Error(dead));
  const port = free.shift();
  if (port) return Promise.resolve(port);
  return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
}

async function die(reason: string): Promise<void> {
  if (dead) return;
  dead = reason;
  // QEMU closes its sockets while exiting: give it a moment to be gone before asking why.
  await new Promise((r) => setTimeout(r, 500));
  dead = `${reason}: ${openzfsVmWhy(runDir)}`;
  console.error(`broker: ${dead}`);
  for (const w of waiting.splice(0)) w.reject(new Error(dead));
  await Promise.all(ports.map(async (port) => {
    const session = port.session;
    if (!session) return;
    await session.client.write("F", enc(dead!)).catch(() => {});
    session.client.close();
  }));
  Deno.exit(1);
}

async function connectPort(index: number): Promise<FrameConn> {
  const path = `${runDir}/agent.${index}.sock`;
  for (let i = 0;; i++) {
    try {
      return new FrameConn(await Deno.connect({ transport: "unix", path }));
    } catch (err) {
      if (i >= 100) throw new Error(`Cannot connect to "${path}": ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function servePort(port: Port): Promise<void> {
  let ready = false;
  for (;;) {
    const frame = await port.conn.read().catch(() => null);
    if (!frame) return die(`the guest's serial port ${port.index} closed`);
    const session = port.session;
    if (frame.kind === "H") {
      if (session) {
        port.session = undefined;
        session.done = true;
        await session.client.write("F", enc("the guest's agent restarted mid-command"))
          .catch(() => {});
        session.client.close();
      }
      if (!ready || session) release(port);
      ready = true;
    } else if ((frame.kind === "O" || frame.kind === "R") && session) {
      // Awaited: a slow client holds back the port, and so the command in the guest.
      await session.client.write(frame.kind, frame.payload).catch(() => {});
    } else if (frame.kind === "X" && session) {
      session.done = true;
      port.session = undefined;
      await session.client.write("X", frame.payload).catch(() => {});
      session.client.close();
      await port.conn.write("D").catch(() => {});
      release(port);
    }
  }
}

async function serveClient(conn: Deno.Conn): Promise<void> {
  const client = new FrameConn(conn);
  const first = await client.read().catch(() => null);
  if (!first || first.kind !== "E") return client.close();
  let port: Port;
  try {
    port = await acquire();
  } catch (err) {
    await client.write("F", enc((err as Error).message)).catch(() => {});
    return client.close();
  }
  const session: Session = { client, done: false };
  port.session = session;
  await port.conn.write("E", first.payload).catch(() => {});
  for (;;) {
    const frame = await client.read().catch(() => null);
    if (session.done) return;
    if (!frame) {
      // The client went away before its command ended: end the command.
      await port.conn.write("K", enc("9")).catch(() => {});
      return;
    }
    if (frame.kind === "I" || frame.kind === "C" || frame.kind === "K") {
      await port.conn.write(frame.kind, frame.payload).catch(() => {});
    }
  }
}

for (let i = 0; i < count; i++) ports.push({ index: i, conn: await connectPort(i) });
for (const port of ports) servePort(port);
const sock = `${runDir}/broker.sock`;
await Deno.remove(sock).catch(() => {});
const listener = Deno.listen({ transport: "unix", path: sock });
console.error(`broker: ${count} ports, listening on ${sock}`);
if (idleMs > 0) {
  const timer = setInterval(() => {
    if (clients > 0 || Date.now() - idleSince < idleMs) return;
    clearInterval(timer);
    console.error(`broker: no client for ${idleMs / 1000} s: stopping the guest`);
    const script = new URL("./openzfs_vm.sh", import.meta.url).pathname;
    new Deno.Command("setsid", {
      args: ["bash", script, "stop"],
      env: { ZVM_RUN_DIR: runDir },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().unref();
  }, 1000);
}
for await (const conn of listener) {
  clients++;
  serveClient(conn).finally(() => {
    clients--;
    idleSince = Date.now();
  });
}
