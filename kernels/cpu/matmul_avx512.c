/* AVX-512 back end: F, BW, VL and VNNI (x86-64 since Ice Lake and Zen 4).
 *
 * Quantized weights: sixteen output rows at a time, one per 32-bit lane.
 * Each block of the sixteen weight rows is transposed once per tile, so that
 * register k holds bytes 4k..4k+3 of every row's block; an x row then takes
 * eight dpbusd (unsigned by signed bytes, summed in fours into int32)
 * against its own bytes 4k..4k+3, broadcast, which leaves in every lane that
 * output's exact integer block dot product without any horizontal sum, and
 * one convert, multiply and FMA scale it for all sixteen outputs. That is 12
 * instructions per x row and block of sixteen outputs (AVX2 spends about
 * 100), while the transposition (about 45) is paid once per tile, so a pass
 * of k rows costs far less than k passes. Lanes never mix: an output's result
 * depends neither on its neighbours nor on n, and each output sums its blocks
 * in order, one FMA each.
 *
 * dpbusd wants unsigned weights. Q8_0's are offset by 128 and Q4_0's nibbles
 * (q - 8 stored as q) are used as they are; the offset times sum(q_x) is
 * subtracted in the integer accumulator, exactly.
 *
 * Float weights: four output rows at a time, so that each x vector loaded
 * feeds four FMAs (x, at 4 bytes an element, would otherwise cost more load
 * bandwidth than the weights), 16 elements per FMA into one accumulator per
 * x row and output, a masked tail, then a fixed-order horizontal sum. */
#include "matmul_impl.h"

#if defined(MATMUL_HAVE_AVX512)

#include <assert.h>
#include <string.h>

/* x rows per tile: a tile of quantized weights holds 8 + 2 registers of
 * weights and scales and 1 accumulator per row, so 8 rows fit with room for
 * the dot products in flight (and 5-row verify passes take one tile). */
#define TILE_ROWS 8

/* Fully unrolled, so that arrays of vectors indexed by i stay in registers. */
#define UNROLLED _Pragma("GCC unroll 16")

/* Sum of 16 lanes: the two halves, then as hsum_f32x8. */
static inline float hsum_f32x16(__m512 a)
{
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    return hsum_f32x8(_mm256_add_ps(_mm512_castps512_ps256(a), hi));
}

static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two 32-byte rows, a in the low half. */
static inline __m512i load_2x256(const uint8_t *a, const uint8_t *b)
{
    const __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a));
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Four 16-byte rows, a in the lowest quarter. */
static inline __m512i load_4x128(const uint8_t *a, const uint8_t *b, const uint8_t *c,
                                 const uint8_t *d)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)a));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)b), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)c), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)d), 3);
}

/* Transposes the 4x4 dwords of v[0..3] within each 128-bit quarter:
 * afterwards v[j] holds dword j of each of the four inputs. */
static inline void transpose_4x4_epi32(__m512i v[4])
{
    const __m512i a = _mm512_unpacklo_epi32(v[0], v[1]), b = _mm512_unpackhi_epi32(v[0], v[1]);
    const __m512i c = _mm512_unpacklo_epi32(v[2], v[3]), d = _mm512_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm512_unpacklo_epi64(a, c);
    v[1] = _mm512_unpackhi_epi64(a, c);
    v[2] = _mm512_unpacklo_epi64(b, d);
    v[3] = _mm512_unpackhi_epi64(b, d);
}

/* One block of the sixteen weight rows of a group, ready for dpbusd:
 * lane i of q[k] holds row i's four unsigned weights that pair with x bytes
 * 4k..4k+3; d and m are the rows' scales and Q4_1 offsets. */
struct wgroup {
    __m512i q[8];
    __m512 d, m;
};

/* Where the sixteen rows of a group start, relative to its first row: the
 * rows past the end of the matrix repeat the last one (their lanes are
 * computed, never stored). */
struct group_rows {
    int32_t off[MATMUL_OUT_ALIGN];
    __m512i offv;
};

static inline void group_rows_init(struct group_rows *g, const struct matmul_job *job, int rows)
{
    assert(job->w_stride <= INT32_MAX / MATMUL_OUT_ALIGN); /* gather offsets are int32 */
    for (int i = 0; i < MATMUL_OUT_ALIGN; i++)
        g->off[i] = (i < rows ? i : rows - 1) * (int32_t)job->w_stride;
    g->offv = _mm512_loadu_si512(g->off);
}

/* Loads and transposes block p of each row (p: the block in the first row). */
ALWAYS_INLINE void load_wgroup(enum dtype t, const struct group_rows *g, const uint8_t *p,
                               struct wgroup *wg)
{
    const int32_t *off = g->off;
    /* The scales head each block: d, then m for Q4_1. */
    const __m512i dm = _mm512_i32gather_epi32(g->offv, p, 1);
    wg->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
    if (t == DTYPE_Q4_1)
        wg->m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
    if (t == DTYPE_Q8_0) {
        /* Rows i and 4+i in the halves of z[i], rows 8+i and 12+i in
         * z[4+i]. After the 4x4 transposes, the quarters of z[j] hold dword
         * j of rows 0..3, dword 4+j of rows 0..3, dword j of rows 4..7 and
         * dword 4+j of rows 4..7 (z[4+j] the same of rows 8..15); taking
         * quarters 0 and 2, or 1 and 3, of both puts all sixteen in order. */
        const uint8_t *q = p + offsetof(struct block_q8_0, qs);
        __m512i z[8];
        UNROLLED for (int i = 0; i < 4; i++) {
            z[i] = load_2x256(q + off[i], q + off[i + 4]);
            z[4 + i] = load_2x256(q + off[i + 8], q + off[i + 12]);
        }
        transpose_4x4_epi32(z);
        transpose_4x4_epi32(z + 4);
        const __m512i bias = _mm512_set1_epi8((char)0x80); /* q + 128 */
        UNROLLED for (int j = 0; j < 4; j++) {
            wg->q[j] = _mm512_xor_si512(_mm512_shuffle_i32x4(z[j], z[4 + j], 0x88), bias);
            wg->q[4 + j] = _mm512_xor_si512(_mm512_shuffle_i32x4(z[j], z[4 + j], 0xDD), bias);
        }
    } else {
        /* Rows i, 4+i, 8+i, 12+i in the quarters of z[i]; after the
         * transpose lane L of z[j] holds packed bytes 4j..4j+3 of row L,
         * whose low nibbles are elements 4j..4j+3, high ones 16+4j.. */
        const uint8_t *q = p + (t == DTYPE_Q4_0 ? offsetof(struct block_q4_0, qs)
                                                : offsetof(struct block_q4_1, qs));
        __m512i z[4];
        UNROLLED for (int i = 0; i < 4; i++)
            z[i] = load_4x128(q + off[i], q + off[i + 4], q + off[i + 8], q + off[i + 12]);
        transpose_4x4_epi32(z);
        const __m512i low = _mm512_set1_epi8(0x0F);
        UNROLLED for (int j = 0; j < 4; j++) {
            wg->q[j] = _mm512_and_si512(z[j], low);
            wg->q[4 + j] = _mm512_and_si512(_mm512_srli_epi16(z[j], 4), low);
        }
    }
}

/* What dpbusd's unsigned weights exceed the true ones by. */
ALWAYS_INLINE int weight_offset(enum dtype t)
{
    return t == DTYPE_Q8_0 ? 128 : t == DTYPE_Q4_0 ? 8 : 0;
}

/* The cache lines of the group of weight rows from o: one contiguous
 * stretch, as the rows are. Sixteen rows read side by side are sixteen
 * streams, more than the hardware prefetcher follows (and short ones when
 * rows are), so a tile asks for the next group's lines, a share per block,
 * into L2 (into L1 they would evict the lines in use). */
struct group_lines {
    const char *p;
    size_t count;
};

static inline struct group_lines group_lines(const struct matmul_job *job, int o)
{
    const int rows = job->out - o < MATMUL_OUT_ALIGN ? job->out - o : MATMUL_OUT_ALIGN;
    return (struct group_lines){
        .p = (const char *)job->w + (size_t)o * job->w_stride,
        .count = rows > 0 ? ((size_t)rows * job->w_stride + 63) / 64 : 0,
    };
}

/* Always inlined: a function that only prefetches counts as free of side
 * effects, and GCC drops calls to it. */
ALWAYS_INLINE void prefetch_lines(struct group_lines g, size_t lo, size_t hi)
{
    for (size_t l = lo; l < hi && l < g.count; l++)
        _mm_prefetch(g.p + 64 * l, _MM_HINT_T1);
}

/* The next group's lines, asked for a share per block of this group's. */
struct next_group {
    struct group_lines lines;
    size_t per_block;
};

static inline struct next_group next_group_init(const struct matmul_job *job, int o, int n_blocks)
{
    const struct group_lines lines = group_lines(job, o + MATMUL_OUT_ALIGN);
    return (struct next_group){lines, (lines.count + (size_t)n_blocks - 1) / (size_t)n_blocks};
}

ALWAYS_INLINE void next_group_prefetch(struct next_group ng, int b)
{
    prefetch_lines(ng.lines, (size_t)b * ng.per_block, (size_t)(b + 1) * ng.per_block);
}

/* y for the (up to) sixteen output rows from o, x rows r0..r0+nr-1. */
ALWAYS_INLINE void tile_quant(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const int rows = job->out - o < MATMUL_OUT_ALIGN ? job->out - o : MATMUL_OUT_ALIGN;
    struct group_rows g;
    group_rows_init(&g, job, rows);
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    const int n_blocks = job->in / QK;
    const struct next_group next = next_group_init(job, o, n_blocks);
    __m512 acc[TILE_ROWS];
    FOR_TILE_ROWS(r, nr)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < n_blocks; b++) {
        next_group_prefetch(next, b);
        struct wgroup wg;
        load_wgroup(t, &g, w + (size_t)b * quant_block_bytes(t), &wg);
        FOR_TILE_ROWS(r, nr) {
            const struct block_q8x *xb = job_xq_row(job, r0 + r) + b;
            __m512i dot = _mm512_set1_epi32(-weight_offset(t) * xb->sum);
            UNROLLED for (int k = 0; k < 8; k++)
                dot = _mm512_dpbusd_epi32(dot, wg.q[k], _mm512_set1_epi32(load_i32(xb->qs + 4 * k)));
            const __m512 scale = _mm512_mul_ps(wg.d, _mm512_set1_ps(xb->d));
            acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), acc[r]);
            if (t == DTYPE_Q4_1)
                acc[r] = _mm512_fmadd_ps(wg.m, _mm512_set1_ps(xb->s), acc[r]);
        }
    }
    const __mmask16 keep = (__mmask16)((1u << rows) - 1);
    FOR_TILE_ROWS(r, nr)
        _mm512_mask_storeu_ps(job->y + (size_t)(r0 + r) * job->out + o, keep, acc[r]);
}

/* Sixteen weights at element i, widened to float; those not in mask zero. */
ALWAYS_INLINE __m512 load_w16(enum dtype t, const uint8_t *w, int i, __mmask16 mask)
{
    if (t == DTYPE_F32)
        return _mm512_maskz_loadu_ps(mask, (const float *)w + i);
    const __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + i);
    if (t == DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Output rows per float tile: each x vector loaded serves that many FMAs,
 * and a lone x row still has that many accumulators to interleave. */
#define FLOAT_OUT_ROWS 4
#define FLOAT_TILE_ROWS 6 /* 24 accumulators */

/* Elements i..i+15 (those in mask) of FLOAT_OUT_ROWS weight rows against
 * nr x rows: one FMA into each (x row, weight row) accumulator. */
ALWAYS_INLINE void float_step(const struct matmul_job *job, const uint8_t *const w[FLOAT_OUT_ROWS],
                              int i, __mmask16 mask, int r0, int nr, enum dtype t,
                              __m512 acc[FLOAT_TILE_ROWS][FLOAT_OUT_ROWS])
{
    __m512 wv[FLOAT_OUT_ROWS];
    UNROLLED for (int j = 0; j < FLOAT_OUT_ROWS; j++)
        wv[j] = load_w16(t, w[j], i, mask);
    FOR_TILE_ROWS(r, nr) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, job_xf_row(job, r0 + r) + i);
        UNROLLED for (int j = 0; j < FLOAT_OUT_ROWS; j++)
            acc[r][j] = _mm512_fmadd_ps(wv[j], xv, acc[r][j]);
    }
}

/* Float weights against float x, FLOAT_OUT_ROWS output rows from o (rows
 * past the end repeat the last, computed and not stored): 16 elements per
 * step, the last in % 16 masked, then a fixed-order horizontal sum. */
ALWAYS_INLINE void tile_float(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const int rows = job->out - o < FLOAT_OUT_ROWS ? job->out - o : FLOAT_OUT_ROWS;
    const size_t elem = t == DTYPE_F32 ? 4 : 2;
    const uint8_t *w[FLOAT_OUT_ROWS];
    UNROLLED for (int j = 0; j < FLOAT_OUT_ROWS; j++)
        w[j] = job->w + (size_t)(o + (j < rows ? j : rows - 1)) * job->w_stride;
    __m512 acc[FLOAT_TILE_ROWS][FLOAT_OUT_ROWS];
    FOR_TILE_ROWS(r, nr) {
        UNROLLED for (int j = 0; j < FLOAT_OUT_ROWS; j++)
            acc[r][j] = _mm512_setzero_ps();
    }
    const int in = job->in, in16 = in & ~15;
    for (int i = 0; i < in16; i += 16) {
        /* The next rows' weights into L2, a line each time one is begun:
         * four rows side by side are short streams when rows are. */
        if ((i * elem) % 64 == 0) {
            UNROLLED for (int j = 0; j < FLOAT_OUT_ROWS; j++)
                _mm_prefetch((const char *)w[j] + FLOAT_OUT_ROWS * job->w_stride + i * elem, _MM_HINT_T1);
        }
        float_step(job, w, i, 0xFFFF, r0, nr, t, acc);
    }
    if (in16 < in)
        float_step(job, w, in16, (__mmask16)((1u << (in - in16)) - 1), r0, nr, t, acc);
    FOR_TILE_ROWS(r, nr) {
        UNROLLED for (int j = 0; j < rows; j++)
            job->y[(size_t)(r0 + r) * job->out + o + j] = hsum_f32x16(acc[r][j]);
    }
}

/* Repacked Q8_0 (kernels/cpu/repack.h): the sixteen rows' blocks come
 * transposed and offset already, their scales side by side, so a block is
 * nine loads and a convert where tile_quant spends some 45 instructions. An
 * x row's block dot runs in two dpbusd chains (half the latency), which sum
 * to tile_quant's integer exactly; the float steps after it are tile_quant's,
 * so the result is bitwise the same. A partial last group is plain Q8_0 and
 * goes to tile_quant. */
ALWAYS_INLINE void tile_q8_0x16(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    if (job->out - o < MATMUL_OUT_ALIGN) {
        tile_quant(job, o, r0, nr, t);
        return;
    }
    const int n_blocks = job->in / QK;
    const uint8_t *q = job->w + (size_t)o * job->w_stride;
    const uint16_t *d = (const uint16_t *)(q + (size_t)n_blocks * 512);
    const struct next_group next = next_group_init(job, o, n_blocks);
    __m512 acc[TILE_ROWS];
    FOR_TILE_ROWS(r, nr)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < n_blocks; b++) {
        next_group_prefetch(next, b);
        const uint8_t *qb = q + (size_t)b * 512;
        __m512i wq[8];
        UNROLLED for (int k = 0; k < 8; k++)
            wq[k] = _mm512_loadu_si512(qb + 64 * k);
        const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(d + 16 * b)));
        FOR_TILE_ROWS(r, nr) {
            const struct block_q8x *xb = job_xq_row(job, r0 + r) + b;
            __m512i dot = _mm512_set1_epi32(-128 * xb->sum), dot1 = _mm512_setzero_si512();
            UNROLLED for (int k = 0; k < 8; k += 2) {
                dot = _mm512_dpbusd_epi32(dot, wq[k], _mm512_set1_epi32(load_i32(xb->qs + 4 * k)));
                dot1 = _mm512_dpbusd_epi32(dot1, wq[k + 1], _mm512_set1_epi32(load_i32(xb->qs + 4 * k + 4)));
            }
            dot = _mm512_add_epi32(dot, dot1);
            const __m512 scale = _mm512_mul_ps(wd, _mm512_set1_ps(xb->d));
            acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), acc[r]);
        }
    }
    FOR_TILE_ROWS(r, nr)
        _mm512_storeu_ps(job->y + (size_t)(r0 + r) * job->out + o, acc[r]);
}

MATMUL_DEFINE_ROWS_TILED(rows_q8_0x16, tile_q8_0x16, DTYPE_Q8_0, TILE_ROWS, MATMUL_OUT_ALIGN)

/* q8_0x16_pack with tile_quant's own transposition, some twenty times the
 * speed of the portable loop (a 7B model's weights in seconds, not half a
 * minute); byte for byte the same (tests/unit/test_kernels.c). */
static void pack_q8_0x16(void *dst, const void *src, int in, int out)
{
    const size_t n_blocks = (size_t)in / QK, stride = n_blocks * sizeof(struct block_q8_0);
    const struct matmul_job job = {.w_stride = stride, .in = in, .out = MATMUL_OUT_ALIGN};
    struct group_rows g;
    group_rows_init(&g, &job, MATMUL_OUT_ALIGN);
    const int groups = out / MATMUL_OUT_ALIGN;
    for (int gi = 0; gi < groups; gi++) {
        const uint8_t *w = (const uint8_t *)src + (size_t)gi * MATMUL_OUT_ALIGN * stride;
        uint8_t *q = (uint8_t *)dst + (size_t)gi * MATMUL_OUT_ALIGN * stride;
        uint8_t *d = q + n_blocks * 512;
        for (size_t b = 0; b < n_blocks; b++) {
            const uint8_t *p = w + b * sizeof(struct block_q8_0);
            struct wgroup wg;
            load_wgroup(DTYPE_Q8_0, &g, p, &wg);
            UNROLLED for (int k = 0; k < 8; k++)
                _mm512_storeu_si512(q + b * 512 + 64 * (size_t)k, wg.q[k]);
            /* The scales as stored (wg.d is widened; a NaN's payload
             * would not survive the round trip). */
            const __m512i dm = _mm512_i32gather_epi32(g.offv, p, 1);
            _mm256_storeu_si256((__m256i *)(d + 32 * b), _mm512_cvtepi32_epi16(dm));
        }
    }
    const size_t done = (size_t)groups * MATMUL_OUT_ALIGN * stride;
    memcpy((uint8_t *)dst + done, (const uint8_t *)src + done, (size_t)out * stride - done);
}

/* The AVX2 activation quantizer: it is not where the time goes. */
MATMUL_DEFINE_BACKEND(matmul_backend_avx512, "avx512", matmul_quantize_x_avx2,
                      tile_float, FLOAT_TILE_ROWS, FLOAT_OUT_ROWS,
                      tile_quant, TILE_ROWS, MATMUL_OUT_ALIGN, rows_q8_0x16, pack_q8_0x16)

#endif
