/* tandem synth: a random-weight model at any Llama shape, streamed to GGUF.
 *
 * Used for tests and for timing at true shapes (DESIGN.md §6): the text it
 * makes is meaningless, the cost of running it is real. Each tensor's values
 * come from its own generator seeded by (seed, tensor index), so a tensor does
 * not depend on the order it is written in. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/sample.h"
#include "../kernels/cpu/quant.h"
#include "../weights/convert.h"
#include "../weights/gguf.h"
#include "args.h"
#include "commands.h"

struct shape {
    const char *arch;
    int layers, dim, heads, kv_heads, ffn, vocab, ctx;
};

static const struct {
    const char *name;
    struct shape s;
} presets[] = {
    {"tiny", {"llama", 2, 64, 4, 2, 128, 512, 256}},
    {"vicuna-68m", {"llama", 2, 768, 12, 12, 3072, 32000, 2048}},
    {"llama2-7b", {"llama", 32, 4096, 32, 32, 11008, 32000, 4096}},
};

static void synth_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem synth [options] -o OUT.gguf\n\n"
            "Writes a random-weight model at a Llama shape (meaningless text, real cost).\n\n"
            "  --preset NAME        tiny | vicuna-68m | llama2-7b (default tiny)\n"
            "  --arch NAME          llama | qwen2 (qwen2 adds q/k/v biases; default llama)\n"
            "  --layers N --dim N --heads N --kv-heads N --ffn N --vocab N --ctx N\n"
            "                       override the preset's shape\n"
            "  --type T             f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 (default f16)\n"
            "  --seed S             random seed (default 1)\n"
            "  --tied               use token_embd as the output matrix\n"
            "  --tokenizer-from F   copy the tokenizer of GGUF file F (vocab follows it)\n"
            "  -o, --output FILE    where to write (required)\n"
            "  -h, --help           this text\n");
}

/* ---- random tensors ---- */

struct tensor_gen {
    enum dtype type;
    uint64_t cols, rows;
    float mean, std;
    uint64_t seed;
};

static float normal(struct rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
}

static bool fill_random(void *ctx, void *dst, uint64_t nbytes)
{
    const struct tensor_gen *g = ctx;
    struct rng r;
    rng_seed(&r, g->seed);
    float *row = malloc(sizeof(float) * g->cols);
    if (!row)
        return false;
    size_t row_bytes = dtype_row_bytes(g->type, g->cols);
    for (uint64_t i = 0; i < g->rows; i++) {
        for (uint64_t j = 0; j < g->cols; j++)
            row[j] = g->mean + g->std * normal(&r);
        quantize_row(g->type, row, (char *)dst + i * row_bytes, (int64_t)g->cols);
    }
    free(row);
    return nbytes == row_bytes * g->rows;
}

struct synth {
    struct gguf_writer *w;
    struct tensor_gen *gens; /* one per tensor, alive until the write */
    int n_gens, cap_gens;
    uint64_t seed;
};

static void add_random(struct synth *sy, const char *name, enum dtype type, uint64_t cols,
                       uint64_t rows, float mean, float std)
{
    struct tensor_gen *g = &sy->gens[sy->n_gens++];
    *g = (struct tensor_gen){type, cols, rows, mean, std, sy->seed * 1000003u + sy->n_gens};
    uint64_t ne[2] = {cols, rows};
    gguf_add_tensor(sy->w, name, type, rows > 1 ? 2 : 1, ne, NULL, fill_random, g);
}

/* ---- tokenizer ---- */

/* A SentencePiece-style vocabulary that can encode any text: control tokens,
 * the 256 byte-fallback tokens, then filler pieces. */
static bool write_toy_tokenizer(struct gguf_writer *w, int vocab)
{
    if (vocab < 3 + 256 + 1) {
        fprintf(stderr, "tandem synth: --vocab %d is too small for the built-in tokenizer "
                        "(needs >= 260; or use --tokenizer-from)\n", vocab);
        return false;
    }
    char **tok = calloc(vocab, sizeof *tok);
    float *score = malloc(sizeof(float) * vocab);
    int32_t *type = malloc(sizeof(int32_t) * vocab);
    bool ok = tok && score && type;
    for (int i = 0; ok && i < vocab; i++) {
        char buf[32];
        if (i < 3)
            snprintf(buf, sizeof buf, "%s", (const char *[]){"<unk>", "<s>", "</s>"}[i]);
        else if (i < 259)
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else
            snprintf(buf, sizeof buf, "\xe2\x96\x81w%d", i - 259); /* "▁w0", ... */
        tok[i] = strdup(buf);
        ok = tok[i] != NULL;
        score[i] = i < 259 ? 0.0f : -(float)(i - 259);
        type[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    if (ok) {
        gguf_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, vocab);
        gguf_set_arr_f32(w, "tokenizer.ggml.scores", score, vocab);
        gguf_set_arr_i32(w, "tokenizer.ggml.token_type", type, vocab);
        gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    } else {
        fprintf(stderr, "tandem synth: out of memory\n");
    }
    for (int i = 0; tok && i < vocab; i++)
        free(tok[i]);
    free(tok);
    free(score);
    free(type);
    return ok;
}

/* Copies the tokenizer of another GGUF; its token count becomes the vocab. */
static bool copy_tokenizer(struct gguf_writer *w, const char *path, int *vocab, bool vocab_set)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "tandem synth: %s\n", err);
        return false;
    }
    enum gguf_value_type et;
    uint64_t n;
    bool ok = gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n) && et == GGUF_STRING &&
              n > 0 && n <= (1u << 24);
    if (!ok)
        fprintf(stderr, "tandem synth: %s: no usable 'tokenizer.ggml.tokens' array\n", path);
    else if (vocab_set && (uint64_t)*vocab != n) {
        fprintf(stderr, "tandem synth: --vocab %d differs from the %llu tokens of %s\n", *vocab,
                (unsigned long long)n, path);
        ok = false;
    } else {
        *vocab = (int)n;
        gguf_copy_kv_prefix(w, f, "tokenizer.");
    }
    gguf_close(f);
    return ok;
}

/* ---- the model ---- */

static void progress(void *ctx, int64_t done, int64_t total)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\rtandem synth: %lld/%lld tensors%s", (long long)done, (long long)total,
                done == total ? "\n" : "");
}

static bool check_shape(const struct shape *s, enum dtype type)
{
    const char *bad = NULL;
    if (s->dim % s->heads)
        bad = "--dim must be a multiple of --heads";
    else if (s->heads % s->kv_heads)
        bad = "--heads must be a multiple of --kv-heads";
    else if ((s->dim / s->heads) % 2)
        bad = "head size (dim / heads) must be even";
    else if (dtype_block_elems(type) > 1 && (s->dim % QK || s->ffn % QK))
        bad = "--dim and --ffn must be multiples of 32 for quantized types";
    if (bad)
        fprintf(stderr, "tandem synth: %s\n", bad);
    return !bad;
}

static bool write_model(const struct shape *s, enum dtype type, uint64_t seed, bool tied,
                        const char *tok_from, bool vocab_set, const char *out)
{
    struct shape sh = *s;
    struct synth sy = {gguf_writer_new(), NULL, 0, 0, seed};
    sy.cap_gens = 4 + 12 * sh.layers;
    sy.gens = calloc(sy.cap_gens, sizeof *sy.gens);
    bool ok = sy.w && sy.gens;
    if (ok)
        ok = tok_from ? copy_tokenizer(sy.w, tok_from, &sh.vocab, vocab_set)
                      : write_toy_tokenizer(sy.w, sh.vocab);
    if (ok) {
        const char *a = sh.arch;
        char key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", a, k), key)
        gguf_set_str(sy.w, "general.architecture", a);
        gguf_set_str(sy.w, "general.name", "tandem-synth");
        gguf_set_u32(sy.w, "general.file_type", convert_file_type(type));
        gguf_set_u32(sy.w, KEY("block_count"), sh.layers);
        gguf_set_u32(sy.w, KEY("context_length"), sh.ctx);
        gguf_set_u32(sy.w, KEY("embedding_length"), sh.dim);
        gguf_set_u32(sy.w, KEY("feed_forward_length"), sh.ffn);
        gguf_set_u32(sy.w, KEY("attention.head_count"), sh.heads);
        gguf_set_u32(sy.w, KEY("attention.head_count_kv"), sh.kv_heads);
        gguf_set_f32(sy.w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
        gguf_set_f32(sy.w, KEY("rope.freq_base"), 10000.0f);
        gguf_set_u32(sy.w, KEY("vocab_size"), sh.vocab);
#undef KEY
        /* Scales: matrices 1/sqrt(fan_in) keep each block's output O(1); the
         * LM head gives logits of std ~3, peaked enough to be text-like. */
        int hd = sh.dim / sh.heads, kv = sh.kv_heads * hd;
        float s_in = 1.0f / sqrtf((float)sh.dim), s_ffn = 1.0f / sqrtf((float)sh.ffn);
        add_random(&sy, "token_embd.weight", type, sh.dim, sh.vocab, 0.0f, tied ? 3 * s_in : 1.0f);
        add_random(&sy, "output_norm.weight", DTYPE_F32, sh.dim, 1, 1.0f, 0.05f);
        if (!tied)
            add_random(&sy, "output.weight", type, sh.dim, sh.vocab, 0.0f, 3 * s_in);
        for (int l = 0; l < sh.layers; l++) {
            char name[64];
#define T(n) (snprintf(name, sizeof name, "blk.%d.%s", l, n), name)
            add_random(&sy, T("attn_norm.weight"), DTYPE_F32, sh.dim, 1, 1.0f, 0.05f);
            add_random(&sy, T("ffn_norm.weight"), DTYPE_F32, sh.dim, 1, 1.0f, 0.05f);
            add_random(&sy, T("attn_q.weight"), type, sh.dim, sh.dim, 0.0f, s_in);
            add_random(&sy, T("attn_k.weight"), type, sh.dim, kv, 0.0f, s_in);
            add_random(&sy, T("attn_v.weight"), type, sh.dim, kv, 0.0f, s_in);
            add_random(&sy, T("attn_output.weight"), type, sh.dim, sh.dim, 0.0f, s_in);
            add_random(&sy, T("ffn_gate.weight"), type, sh.dim, sh.ffn, 0.0f, s_in);
            add_random(&sy, T("ffn_up.weight"), type, sh.dim, sh.ffn, 0.0f, s_in);
            add_random(&sy, T("ffn_down.weight"), type, sh.ffn, sh.dim, 0.0f, s_ffn);
            if (!strcmp(a, "qwen2")) {
                add_random(&sy, T("attn_q.bias"), DTYPE_F32, sh.dim, 1, 0.0f, 0.1f);
                add_random(&sy, T("attn_k.bias"), DTYPE_F32, kv, 1, 0.0f, 0.1f);
                add_random(&sy, T("attn_v.bias"), DTYPE_F32, kv, 1, 0.0f, 0.1f);
            }
#undef T
        }
        char err[512];
        ok = gguf_writer_write(sy.w, out, progress, NULL, err, sizeof err);
        if (!ok)
            fprintf(stderr, "tandem synth: %s\n", err);
    }
    gguf_writer_free(sy.w);
    free(sy.gens);
    return ok;
}

int cmd_synth(int argc, char **argv)
{
    enum { O_PRESET = 256, O_ARCH, O_LAYERS, O_DIM, O_HEADS, O_KV, O_FFN, O_VOCAB, O_CTX, O_TYPE,
           O_SEED, O_TIED, O_TOK };
    static const struct option opts[] = {
        {"preset", required_argument, 0, O_PRESET}, {"arch", required_argument, 0, O_ARCH},
        {"layers", required_argument, 0, O_LAYERS}, {"dim", required_argument, 0, O_DIM},
        {"heads", required_argument, 0, O_HEADS},   {"kv-heads", required_argument, 0, O_KV},
        {"ffn", required_argument, 0, O_FFN},       {"vocab", required_argument, 0, O_VOCAB},
        {"ctx", required_argument, 0, O_CTX},       {"type", required_argument, 0, O_TYPE},
        {"seed", required_argument, 0, O_SEED},     {"tied", no_argument, 0, O_TIED},
        {"tokenizer-from", required_argument, 0, O_TOK},
        {"output", required_argument, 0, 'o'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    struct shape s = presets[0].s;
    int kv_heads = 0;
    enum dtype type = DTYPE_F16;
    uint64_t seed = 1;
    bool tied = false, vocab_set = false;
    const char *out = NULL, *tok_from = NULL;
    optind = 1;
    int c;
    /* --preset first, so explicit sizes override it whatever the order. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--preset"))
            continue;
        size_t p = 0;
        while (p < sizeof presets / sizeof presets[0] && strcmp(presets[p].name, argv[i + 1]))
            p++;
        if (p == sizeof presets / sizeof presets[0]) {
            fprintf(stderr, "tandem synth: unknown preset '%s' (tiny, vicuna-68m, llama2-7b)\n",
                    argv[i + 1]);
            return 2;
        }
        s = presets[p].s;
    }
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_PRESET: break;
        case O_ARCH:
            if (strcmp(optarg, "llama") && strcmp(optarg, "qwen2")) {
                fprintf(stderr, "tandem synth: --arch: '%s' is not llama or qwen2\n", optarg);
                ok = false;
            }
            s.arch = strcmp(optarg, "qwen2") ? "llama" : "qwen2";
            break;
        case O_LAYERS: ok = arg_int("--layers", optarg, 1, 4096, &s.layers); break;
        case O_DIM: ok = arg_int("--dim", optarg, 2, 65536, &s.dim); break;
        case O_HEADS: ok = arg_int("--heads", optarg, 1, 1024, &s.heads); break;
        case O_KV: ok = arg_int("--kv-heads", optarg, 1, 1024, &kv_heads); break;
        case O_FFN: ok = arg_int("--ffn", optarg, 1, 1 << 18, &s.ffn); break;
        case O_VOCAB: ok = arg_int("--vocab", optarg, 1, 1 << 24, &s.vocab); vocab_set = true; break;
        case O_CTX: ok = arg_int("--ctx", optarg, 1, 1 << 24, &s.ctx); break;
        case O_TYPE:
            ok = dtype_from_name(optarg, &type);
            if (!ok)
                fprintf(stderr, "tandem synth: --type: '%s' is not one of f32 f16 bf16 q8_0 q4_0 q4_1\n", optarg);
            break;
        case O_SEED: ok = arg_u64("--seed", optarg, &seed); break;
        case O_TIED: tied = true; break;
        case O_TOK: tok_from = optarg; break;
        case 'o': out = optarg; break;
        case 'h': synth_usage(stdout); return 0;
        default: synth_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem synth: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "tandem synth: -o OUT.gguf is required\n");
        synth_usage(stderr);
        return 2;
    }
    if (kv_heads)
        s.kv_heads = kv_heads;
    else if (s.kv_heads > s.heads || s.heads % s.kv_heads)
        s.kv_heads = s.heads;
    if (!check_shape(&s, type))
        return 2;
    return write_model(&s, type, seed, tied, tok_from, vocab_set, out) ? 0 : 1;
}
