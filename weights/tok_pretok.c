/* Byte-level BPE pre-tokenizers: the regexes that split text into words
 * before merging, one list per model family (tokenizer.ggml.pre), run with
 * PCRE2's Unicode properties and JIT.
 *
 * A list is applied pass by pass, each pass splitting every piece of the
 * previous one into its matches and the gaps between them (Hugging Face's
 * Split with "isolated" behaviour); a regex never sees past its piece, so
 * lookaheads stop at piece ends, as in Hugging Face's Sequence of
 * pre-tokenizers. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* GPT-2's pattern, as Hugging Face's ByteLevel pre-tokenizer has it. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define MAX_PASSES 2

static const struct {
    const char *names; /* tokenizer.ggml.pre values, space-separated */
    bool ignore_merges; /* a piece that is a token is that token (HF BPE ignore_merges) */
    const char *passes[MAX_PASSES];
} families[] = {
    /* kind 0 */ {"default gpt-2 gpt2 mpt olmo", false, {RE_GPT2}},
    /* kind 1: individual digits first (HF Digits), then GPT-2's regex */
    {"smollm starcoder refact codeshell", false, {"\\p{N}", RE_GPT2}},
    /* kind 2 */ {"llama3 llama-v3 llama-bpe", true, {RE_LLAMA3}},
    /* kind 3 */ {"qwen2 deepseek-r1-qwen", false, {RE_QWEN2}},
};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

struct pretok {
    int n;
    pcre2_code *code[MAX_PASSES];
};

struct pretok_run {
    const struct pretok *p;
    pcre2_match_data *md;
    struct spanvec tmp;
};

static bool name_in(const char *name, const char *list)
{
    size_t n = strlen(name);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ' ');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k == n && !memcmp(s, name, n))
            return true;
        s += k + (e != NULL);
    }
    return false;
}

static int family_of(const char *name)
{
    for (int i = 0; i < N_FAMILIES; i++)
        if (name_in(name, families[i].names))
            return i;
    return -1;
}

int pretok_passes(const char *name, const char *const **passes, bool *ignore_merges)
{
    int fam = family_of(name), n = 0;
    if (fam < 0)
        return 0;
    while (n < MAX_PASSES && families[fam].passes[n])
        n++;
    *passes = families[fam].passes;
    *ignore_merges = families[fam].ignore_merges;
    return n;
}

struct pretok *pretok_new(const char *name, int *kind, bool *ignore_merges, char *err, size_t errlen)
{
    int fam = family_of(name);
    if (fam < 0) {
        snprintf(err, errlen, "tokenizer.ggml.pre '%s' not supported (supported: gpt2, smollm, llama3, qwen2 "
                              "and their aliases)", name);
        return NULL;
    }
    struct pretok *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < MAX_PASSES && families[fam].passes[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        p->code[i] = pcre2_compile((PCRE2_SPTR)families[fam].passes[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, errlen, "pre-tokenizer '%s': PCRE2: %s at %zu", name, (const char *)msg, (size_t)eo);
            pretok_free(p);
            return NULL;
        }
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE); /* without JIT it is slower, not wrong */
        p->n = i + 1;
    }
    *kind = fam;
    *ignore_merges = families[fam].ignore_merges;
    return p;
}

void pretok_free(struct pretok *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        pcre2_code_free(p->code[i]);
    free(p);
}

struct pretok_run *pretok_run_new(const struct pretok *p)
{
    struct pretok_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->p = p;
    r->md = pcre2_match_data_create(1, NULL);
    if (!r->md) {
        free(r);
        return NULL;
    }
    return r;
}

void pretok_run_free(struct pretok_run *r)
{
    if (!r)
        return;
    pcre2_match_data_free(r->md);
    free(r->tmp.v);
    free(r);
}

static bool push(struct spanvec *v, size_t off, size_t len)
{
    if (!tok_reserve((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v))
        return false;
    v->v[v->n++] = (struct span){off, len};
    return true;
}

static int match(struct pretok_run *r, const pcre2_code *code, const char *s, size_t n, size_t start)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, r->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its backtracking on the heap */
        rc = pcre2_match(code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, r->md, NULL);
    return rc;
}

/* Splits s[off..off+len) into matches and gaps, appended to out. */
static bool split_one(struct pretok_run *r, const pcre2_code *code, const char *s, size_t off, size_t len,
                      struct spanvec *out)
{
    const char *p = s + off;
    size_t pos = 0;
    while (pos < len) {
        int rc = match(r, code, p, len, pos);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return false;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t a = ov[0], b = ov[1];
        if (a > pos && !push(out, off + pos, a - pos))
            return false;
        if (b == a) { /* our patterns never match empty; step a character anyway */
            size_t k = utf8_char_len((const uint8_t *)p + a, len - a);
            b = a + (k ? k : 1);
        }
        if (!push(out, off + a, b - a))
            return false;
        pos = b;
    }
    return pos >= len || push(out, off + pos, len - pos);
}

bool pretok_split(struct pretok_run *r, const char *s, size_t n, struct spanvec *out)
{
    if (n == 0)
        return true;
    const struct pretok *p = r->p;
    if (p->n == 1)
        return split_one(r, p->code[0], s, 0, n, out);
    /* the passes before the last one go through tmp */
    struct spanvec *cur = &r->tmp;
    cur->n = 0;
    if (!push(cur, 0, n))
        return false;
    for (int pass = 0; pass < p->n; pass++) {
        bool last = pass == p->n - 1;
        struct spanvec next = {0};
        struct spanvec *dst = last ? out : &next;
        for (size_t i = 0; i < cur->n; i++)
            if (!split_one(r, p->code[pass], s, cur->v[i].off, cur->v[i].len, dst)) {
                free(next.v);
                return false;
            }
        if (!last) {
            free(cur->v);
            *cur = next;
        }
    }
    return true;
}
