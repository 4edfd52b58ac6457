import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import * as zfs from "../../lib/zfs/zfs.ts";
import { uploadStream } from "../../lib/transfer/upload.ts";
import { planSchedule } from "../../lib/transfer/part_size.ts";

integration("zfs send → S3 object → zfs receive restores every file byte for byte", async (bed) => {
  const pool = await createPool();
  const store = await freshBucket(bed.s3, "slice");
  try {
    const dir = await pool.createDataset("data set");
    await Deno.writeFile(`${dir}/big.bin`, pseudoRandom(12 * 1024 * 1024, 7));
    await Deno.mkdir(`${dir}/sub dir`);
    await Deno.writeTextFile(`${dir}/sub dir/it's "odd".txt`, "hello from z3\n");
    await pool.snapshot("data set", "first snap");
    const snap = `${pool.name}/data set@first snap`;

    const sender = zfs.send(snap);
    const result = await uploadStream(store, snap, sender.stdout!, {
      schedule: planSchedule({ partSize: 5 * 1024 * 1024 }),
      concurrency: 2,
      beforeComplete: () => sender.done,
    });
    console.log(`  ${bed.zfsFlavour}: sent ${result.bytes} bytes in ${result.parts} parts`);
    assert.deepEqual(result.parts > 1, true, "a 12 MiB dataset must need several 5 MiB parts");
    const info = await store.head(snap);
    assert.deepEqual(info?.size, result.bytes);

    const receiver = zfs.receive(`${pool.name}/restored`);
    await (await store.get(snap)).pipeTo(receiver.stdin!);
    await receiver.done;
    const restored = await zfs.listSnapshots(`${pool.name}/restored`);
    assert.deepEqual(restored.map((s) => s.snapshot), ["first snap"]);
    const source = await zfs.listSnapshots(`${pool.name}/data set`);
    assert.deepEqual(restored[0].guid, source[0].guid, "a received snapshot keeps its GUID");
    assert.deepEqual(await treeDigest(`${pool.mountpoint}/restored`), await treeDigest(dir));
  } finally {
    store.close();
    await pool.destroy();
  }
});
