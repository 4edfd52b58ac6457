import assert from "node:assert/strict";
import { treeDigest } from "../../bed/files.ts";

/** A tree with a file, an empty directory, a symlink and a file of mode 0640 in a subdirectory. */
async function tree(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "z3-tree-" });
  await Deno.writeTextFile(`${root}/a.txt`, "a\n", { mode: 0o644 });
  await Deno.mkdir(`${root}/empty`);
  await Deno.mkdir(`${root}/sub dir`);
  await Deno.writeTextFile(`${root}/sub dir/b.txt`, "b\n");
  await Deno.chmod(`${root}/sub dir/b.txt`, 0o640);
  await Deno.symlink("a.txt", `${root}/link`);
  return root;
}

Deno.test("treeDigest() tells apart trees that lose a mode, a symlink or an empty directory", async () => {
  const changes: [string, (root: string) => Promise<void>][] = [
    ["an empty directory gone", (r) => Deno.remove(`${r}/empty`)],
    ["a mode changed", (r) => Deno.chmod(`${r}/sub dir/b.txt`, 0o644)],
    ["a directory's mode changed", (r) => Deno.chmod(`${r}/empty`, 0o700)],
    ["a symlink gone", (r) => Deno.remove(`${r}/link`)],
    ["a symlink's target changed", async (r) => {
      await Deno.remove(`${r}/link`);
      await Deno.symlink("sub dir/b.txt", `${r}/link`);
    }],
    ["a symlink made a copy of its target", async (r) => {
      await Deno.remove(`${r}/link`);
      await Deno.copyFile(`${r}/a.txt`, `${r}/link`);
    }],
    ["a file's bytes changed", (r) => Deno.writeTextFile(`${r}/a.txt`, "A\n")],
  ];
  for (const [what, change] of changes) {
    const [want, got] = [await tree(), await tree()];
    try {
      assert.deepEqual(await treeDigest(got), await treeDigest(want), "equal trees agree");
      await change(got);
      assert.notDeepEqual(await treeDigest(got), await treeDigest(want), what);
    } finally {
      await Deno.remove(want, { recursive: true });
      await Deno.remove(got, { recursive: true });
    }
  }
});
