/*
 * MD5 of four independent byte streams at once, one per 32-bit lane of WebAssembly's 128-bit SIMD
 * (RFC 1321's compression function, step for step, on four states side by side). It hashes four
 * upload parts in the time one scalar MD5 needs for about 1.5 of them.
 *
 * Built into lib/md5x4_wasm.ts by `deno task wasm` (wasm/build.sh; needs Debian's clang-14 and
 * lld-14). The committed build is what runs; this file is its source.
 *
 * md5x4(state, p0, p1, p2, p3, nblocks): state is 4 v128 (A, B, C, D; lane i = stream i);
 * p0..p3 point at nblocks 64-byte blocks of each stream in linear memory.
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef v128_t V;
#define F(x, y, z) wasm_v128_bitselect(y, z, x)
#define G(x, y, z) wasm_v128_bitselect(x, y, z)
#define H(x, y, z) wasm_v128_xor(wasm_v128_xor(x, y), z)
#define I(x, y, z) wasm_v128_xor(y, wasm_v128_or(x, wasm_v128_not(z)))
#define ROTL(v, s) wasm_v128_or(wasm_i32x4_shl(v, s), wasm_u32x4_shr(v, 32 - (s)))
#define STEP(f, a, b, c, d, m, k, s) \
  a = wasm_i32x4_add(b, ROTL(wasm_i32x4_add(wasm_i32x4_add(a, f(b, c, d)), \
                                            wasm_i32x4_add(m, wasm_i32x4_splat((int32_t)(k)))), \
                             s))

void md5x4(V *state, const uint32_t *p0, const uint32_t *p1, const uint32_t *p2,
           const uint32_t *p3, uint32_t nblocks) {
  V a = state[0], b = state[1], c = state[2], d = state[3];
  for (uint32_t n = 0; n < nblocks; n++) {
    V m[16];
    for (int w = 0; w < 16; w += 4) {
      /* 4x4 transpose: four words of each stream into one vector per word. */
      V r0 = wasm_v128_load(p0 + w), r1 = wasm_v128_load(p1 + w);
      V r2 = wasm_v128_load(p2 + w), r3 = wasm_v128_load(p3 + w);
      V t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
      V t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
      m[w] = wasm_i64x2_shuffle(t0, t1, 0, 2);
      m[w + 1] = wasm_i64x2_shuffle(t0, t1, 1, 3);
      m[w + 2] = wasm_i64x2_shuffle(t2, t3, 0, 2);
      m[w + 3] = wasm_i64x2_shuffle(t2, t3, 1, 3);
    }
    p0 += 16;
    p1 += 16;
    p2 += 16;
    p3 += 16;
    V aa = a, bb = b, cc = c, dd = d;
    STEP(F,a,b,c,d,m[0],0xd76aa478,7); STEP(F,d,a,b,c,m[1],0xe8c7b756,12); STEP(F,c,d,a,b,m[2],0x242070db,17); STEP(F,b,c,d,a,m[3],0xc1bdceee,22);
    STEP(F,a,b,c,d,m[4],0xf57c0faf,7); STEP(F,d,a,b,c,m[5],0x4787c62a,12); STEP(F,c,d,a,b,m[6],0xa8304613,17); STEP(F,b,c,d,a,m[7],0xfd469501,22);
    STEP(F,a,b,c,d,m[8],0x698098d8,7); STEP(F,d,a,b,c,m[9],0x8b44f7af,12); STEP(F,c,d,a,b,m[10],0xffff5bb1,17); STEP(F,b,c,d,a,m[11],0x895cd7be,22);
    STEP(F,a,b,c,d,m[12],0x6b901122,7); STEP(F,d,a,b,c,m[13],0xfd987193,12); STEP(F,c,d,a,b,m[14],0xa679438e,17); STEP(F,b,c,d,a,m[15],0x49b40821,22);
    STEP(G,a,b,c,d,m[1],0xf61e2562,5); STEP(G,d,a,b,c,m[6],0xc040b340,9); STEP(G,c,d,a,b,m[11],0x265e5a51,14); STEP(G,b,c,d,a,m[0],0xe9b6c7aa,20);
    STEP(G,a,b,c,d,m[5],0xd62f105d,5); STEP(G,d,a,b,c,m[10],0x02441453,9); STEP(G,c,d,a,b,m[15],0xd8a1e681,14); STEP(G,b,c,d,a,m[4],0xe7d3fbc8,20);
    STEP(G,a,b,c,d,m[9],0x21e1cde6,5); STEP(G,d,a,b,c,m[14],0xc33707d6,9); STEP(G,c,d,a,b,m[3],0xf4d50d87,14); STEP(G,b,c,d,a,m[8],0x455a14ed,20);
    STEP(G,a,b,c,d,m[13],0xa9e3e905,5); STEP(G,d,a,b,c,m[2],0xfcefa3f8,9); STEP(G,c,d,a,b,m[7],0x676f02d9,14); STEP(G,b,c,d,a,m[12],0x8d2a4c8a,20);
    STEP(H,a,b,c,d,m[5],0xfffa3942,4); STEP(H,d,a,b,c,m[8],0x8771f681,11); STEP(H,c,d,a,b,m[11],0x6d9d6122,16); STEP(H,b,c,d,a,m[14],0xfde5380c,23);
    STEP(H,a,b,c,d,m[1],0xa4beea44,4); STEP(H,d,a,b,c,m[4],0x4bdecfa9,11); STEP(H,c,d,a,b,m[7],0xf6bb4b60,16); STEP(H,b,c,d,a,m[10],0xbebfbc70,23);
    STEP(H,a,b,c,d,m[13],0x289b7ec6,4); STEP(H,d,a,b,c,m[0],0xeaa127fa,11); STEP(H,c,d,a,b,m[3],0xd4ef3085,16); STEP(H,b,c,d,a,m[6],0x04881d05,23);
    STEP(H,a,b,c,d,m[9],0xd9d4d039,4); STEP(H,d,a,b,c,m[12],0xe6db99e5,11); STEP(H,c,d,a,b,m[15],0x1fa27cf8,16); STEP(H,b,c,d,a,m[2],0xc4ac5665,23);
    STEP(I,a,b,c,d,m[0],0xf4292244,6); STEP(I,d,a,b,c,m[7],0x432aff97,10); STEP(I,c,d,a,b,m[14],0xab9423a7,15); STEP(I,b,c,d,a,m[5],0xfc93a039,21);
    STEP(I,a,b,c,d,m[12],0x655b59c3,6); STEP(I,d,a,b,c,m[3],0x8f0ccc92,10); STEP(I,c,d,a,b,m[10],0xffeff47d,15); STEP(I,b,c,d,a,m[1],0x85845dd1,21);
    STEP(I,a,b,c,d,m[8],0x6fa87e4f,6); STEP(I,d,a,b,c,m[15],0xfe2ce6e0,10); STEP(I,c,d,a,b,m[6],0xa3014314,15); STEP(I,b,c,d,a,m[13],0x4e0811a1,21);
    STEP(I,a,b,c,d,m[4],0xf7537e82,6); STEP(I,d,a,b,c,m[11],0xbd3af235,10); STEP(I,c,d,a,b,m[2],0x2ad7d2bb,15); STEP(I,b,c,d,a,m[9],0xeb86d391,21);
    a = wasm_i32x4_add(a, aa);
    b = wasm_i32x4_add(b, bb);
    c = wasm_i32x4_add(c, cc);
    d = wasm_i32x4_add(d, dd);
  }
  state[0] = a;
  state[1] = b;
  state[2] = c;
  state[3] = d;
}
