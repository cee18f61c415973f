/* Internals of matmul shared by its instruction-set back ends and the unit
 * tests. Each back end (scalar, AVX2, AVX-512, NEON) provides one function
 * per weight dtype that computes a range of output rows; matmul.c quantizes
 * x, splits the output rows over threads and calls it. */
#ifndef TANDEM_KERNELS_CPU_MATMUL_IMPL_H
#define TANDEM_KERNELS_CPU_MATMUL_IMPL_H

#include "convert_impl.h"
#include "matmul.h"

/* The SIMD back ends this build has, if any. TANDEM_FORCE_SCALAR leaves them
 * out so the portable code can be run (and timed) on any machine. A machine
 * with AVX-512 runs the AVX2 back end too, so both are built (and tested). */
#if !defined(TANDEM_FORCE_SCALAR) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MATMUL_HAVE_AVX2 1
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define MATMUL_HAVE_AVX512 1
#endif
#elif !defined(TANDEM_FORCE_SCALAR) && defined(__ARM_NEON) && defined(__aarch64__)
#define MATMUL_HAVE_NEON 1
#endif

/* One QK-element block of an activation row quantized for integer dot
 * products with quantized weights: q = round(x * 127/amax) (ties to even).
 * The scales are rounded as ggml's q8_0/q8_1 blocks store them, as halves,
 * so our logits follow llama.cpp's to float rounding: over a deep model the
 * half-rounding of the scales moves logits by tenths, far more than any
 * difference in summation order.
 *   d     fp16(amax/127), widened                 x ~ d*q
 *   s     fp16(amax/127 * sum(q)), widened        a Q4_1 offset m adds m*s
 *   dsum  d * sum(q), exact in float              a Q4_0 offset -8*d_w adds -8*d_w*dsum
 *   sum   sum(q)                                  an integer weight offset c adds c*sum */
struct block_q8x {
    float d, s, dsum;
    int32_t sum;
    int8_t qs[QK];
};

/* Fills a block's scales from the unrounded scale d and sum(q). */
static inline void block_q8x_set_scales(struct block_q8x *y, float d, int sum)
{
    y->d = fp16_to_f32_inline(f32_to_fp16_inline(d));
    y->s = fp16_to_f32_inline(f32_to_fp16_inline(d * (float)sum));
    y->dsum = y->d * (float)sum;
    y->sum = sum;
}

/* The operands of one matmul, as every back end sees them.
 *   w  (out, in) dtype t, rows w_stride bytes apart
 *   x  (n, in)   float rows, or (n, in/QK) block_q8x rows for quantized t
 *   y  (n, out) */
struct matmul_job {
    float *y;
    const uint8_t *w;
    size_t w_stride;
    const void *x;
    int n, in, out;
};

/* Threads split the output rows at multiples of MATMUL_OUT_ALIGN (whole
 * 64-byte lines of y, so no two threads write one line), which lets a back
 * end work on that many output rows at a time: only the last group of a
 * matrix can be partial. */
#define MATMUL_OUT_ALIGN 16

/* Computes y[r*out + o] for every r < n and o in [o_lo, o_hi); o_lo is a
 * multiple of MATMUL_OUT_ALIGN, and o_hi too unless it is out. */
typedef void (*matmul_rows_fn)(const struct matmul_job *job, int o_lo, int o_hi);

struct matmul_backend {
    const char *name;
    /* Indexed by enum dtype; NULL for ids that are not a supported type. */
    matmul_rows_fn rows[DTYPE_BF16 + 1];
    /* Quantizes one activation row of `in` elements (a multiple of QK). */
    void (*quantize_x)(const float *x, struct block_q8x *y, int in);
    /* Q8_0 weights repacked as kernels/cpu/repack.h lays them out; NULL if
     * this back end has no kernel for them. */
    matmul_rows_fn rows_q8_0x16;
    /* q8_0x16_pack's work, faster; NULL with rows_q8_0x16. */
    void (*pack_q8_0x16)(void *dst, const void *src, int in, int out);
};

extern const struct matmul_backend matmul_backend_scalar;
#if defined(MATMUL_HAVE_AVX2)
extern const struct matmul_backend matmul_backend_avx2;
#endif
#if defined(MATMUL_HAVE_AVX512)
extern const struct matmul_backend matmul_backend_avx512;
#endif
#if defined(MATMUL_HAVE_NEON)
extern const struct matmul_backend matmul_backend_neon;
#endif

/* Every back end this build has, scalar first, then each SIMD one in order
 * of preference (the tests run them all). */
extern const struct matmul_backend *const matmul_backends[];
extern const int matmul_backend_count;

/* The scalar activation quantizer; back ends without a faster one use it. */
void matmul_quantize_x_scalar(const float *x, struct block_q8x *y, int in);
#if defined(MATMUL_HAVE_AVX2)
void matmul_quantize_x_avx2(const float *x, struct block_q8x *y, int in);
#endif

/* The back end matmul() uses: the last of matmul_backends. */
const struct matmul_backend *matmul_backend_best(void);

/* matmul() with a chosen back end (tests compare back ends with this). */
void matmul_with(const struct matmul_backend *be, struct threadpool *tp, float *y,
                 const void *w, enum dtype t, const float *x, int n, int in, int out,
                 void *scratch);
/* matmul_with, the rows computed by `rows` (one of be's) on weights of the
 * layout it takes, whose row stride is still dtype_row_bytes(t, in). */
void matmul_rows_with(const struct matmul_backend *be, matmul_rows_fn rows, struct threadpool *tp,
                      float *y, const void *w, enum dtype t, const float *x, int n, int in,
                      int out, void *scratch);

/* Row tiling shared by every back end.
 *
 * A back end writes one tile function
 *     tile(job, o, r0, nr, t)   y[(r0+r)*out + o + j] for r < nr, j < o_step
 *                               (and o + j < out), weight dtype t
 * which loads each weight block once and applies it to nr x rows, each with
 * its own accumulators. MATMUL_DEFINE_ROWS_TILED turns it into a
 * matmul_rows_fn that calls it with compile-time nr (so the accumulators stay
 * in registers) and compile-time t (so the dtype switches inside fold away)
 * for each group of o_step output rows (o_step divides MATMUL_OUT_ALIGN, so a
 * thread's groups are whole but for the matrix's last).
 *
 * Batch invariance rests on tile functions doing, for every row, the same
 * operations in the same order whatever nr is and wherever the row sits in
 * the tile: then a row's result cannot depend on n. */
#define MATMUL_TILE 4     /* rows per tile, unless a back end asks for more */
#define MATMUL_TILE_MAX 8 /* the most any back end may ask for */

/* Rows are split into the fewest tiles of at most max_tile, of near-equal
 * size (5 rows at most 4: 3 + 2, not 4 + 1), because a lone row leaves the
 * core waiting on its accumulator's FMA latency. */
#define MATMUL_DEFINE_ROWS_TILED(name, tile, t, max_tile, o_step)                   \
    static void name(const struct matmul_job *job, int o_lo, int o_hi)              \
    {                                                                               \
        _Static_assert((max_tile) >= 1 && (max_tile) <= MATMUL_TILE_MAX, "tile");   \
        _Static_assert(MATMUL_OUT_ALIGN % (o_step) == 0, "o_step");                 \
        const int n_tiles = (job->n + (max_tile) - 1) / (max_tile);                 \
        for (int o = o_lo; o < o_hi; o += (o_step)) {                               \
            for (int i = 0; i < n_tiles; i++) {                                     \
                const int r0 = job->n * i / n_tiles;                                \
                switch (job->n * (i + 1) / n_tiles - r0) {                          \
                MATMUL_TILE_CASE(8, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(7, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(6, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(5, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(4, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(3, tile, t, max_tile)                              \
                MATMUL_TILE_CASE(2, tile, t, max_tile)                              \
                default: tile(job, o, r0, 1, t); break;                             \
                }                                                                   \
            }                                                                       \
        }                                                                           \
    }

/* A whole back end from its two tile functions: float weights (f32, f16,
 * bf16) tiled by float_tile rows x float_step outputs, quantized weights
 * (q8_0, q4_0, q4_1) by quant_tile rows x quant_step outputs. Back ends
 * differ in their tiles, never in this table. */
#define MATMUL_DEFINE_BACKEND(var, label, quantizer, tile_float, float_tile, float_step,      \
                              tile_quant, quant_tile, quant_step, rows_packed, packer)        \
    MATMUL_DEFINE_ROWS_TILED(rows_f32, tile_float, DTYPE_F32, float_tile, float_step)          \
    MATMUL_DEFINE_ROWS_TILED(rows_f16, tile_float, DTYPE_F16, float_tile, float_step)          \
    MATMUL_DEFINE_ROWS_TILED(rows_bf16, tile_float, DTYPE_BF16, float_tile, float_step)        \
    MATMUL_DEFINE_ROWS_TILED(rows_q8_0, tile_quant, DTYPE_Q8_0, quant_tile, quant_step)        \
    MATMUL_DEFINE_ROWS_TILED(rows_q4_0, tile_quant, DTYPE_Q4_0, quant_tile, quant_step)        \
    MATMUL_DEFINE_ROWS_TILED(rows_q4_1, tile_quant, DTYPE_Q4_1, quant_tile, quant_step)        \
    const struct matmul_backend var = {                                                       \
        .name = label,                                                                        \
        .rows = {                                                                             \
            [DTYPE_F32] = rows_f32,                                                           \
            [DTYPE_F16] = rows_f16,                                                           \
            [DTYPE_BF16] = rows_bf16,                                                         \
            [DTYPE_Q8_0] = rows_q8_0,                                                         \
            [DTYPE_Q4_0] = rows_q4_0,                                                         \
            [DTYPE_Q4_1] = rows_q4_1,                                                         \
        },                                                                                    \
        .quantize_x = quantizer,                                                              \
        .rows_q8_0x16 = rows_packed,                                                          \
        .pack_q8_0x16 = packer,                                                               \
    };

/* Tiles larger than max_tile never occur, and are not compiled. */
#define MATMUL_TILE_CASE(k, tile, t, max_tile)                                      \
    case k:                                                                         \
        if ((k) <= (max_tile))                                                      \
            tile(job, o, r0, k, t);                                                 \
        break;

/* Loops over the rows of a tile, fully unrolled so that per-row accumulator
 * arrays indexed by the loop variable become registers. */
#define FOR_TILE_ROWS(r, nr) _Pragma("GCC unroll 8") for (int r = 0; r < (nr); r++)

#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* Row r of the quantized activations. */
static inline const struct block_q8x *job_xq_row(const struct matmul_job *job, int r)
{
    return (const struct block_q8x *)job->x + (size_t)r * (size_t)(job->in / QK);
}

static inline const float *job_xf_row(const struct matmul_job *job, int r)
{
    return (const float *)job->x + (size_t)r * (size_t)job->in;
}

#if defined(MATMUL_HAVE_AVX2)
#include <immintrin.h>

/* (a0+a4, a1+a5, a2+a6, a3+a7), then pairs, then the last two: the fixed
 * order in which the x86 back ends finish a row. */
static inline float hsum_f32x8(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* Asks for the weights one row below p, which a tile reaches after it is done
 * with this row. A tile of several rows consumes weights slower than memory
 * delivers them, and the hardware prefetcher alone then falls behind
 * (measured: a 5-row Q8_0 pass 30% faster); a lone row streams at memory
 * speed without it and runs slower with it. */
static inline void prefetch_next_row(const struct matmul_job *job, const uint8_t *p)
{
    __builtin_prefetch(p + job->w_stride);
}

/* Bytes of one block of quantized dtype t (constant once t is). */
ALWAYS_INLINE size_t quant_block_bytes(enum dtype t)
{
    return t == DTYPE_Q8_0 ? sizeof(struct block_q8_0)
         : t == DTYPE_Q4_0 ? sizeof(struct block_q4_0)
                           : sizeof(struct block_q4_1);
}

/* Element i of a float-type weight row, widened to float. */
ALWAYS_INLINE float load_wf(enum dtype t, const uint8_t *w, int i)
{
    return t == DTYPE_F32  ? ((const float *)w)[i]
         : t == DTYPE_F16  ? fp16_to_f32_inline(((const uint16_t *)w)[i])
                           : bf16_to_f32_inline(((const uint16_t *)w)[i]);
}

#endif
