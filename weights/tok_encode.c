/* tokenizer_encode: BOS, then the text cut at special tokens (leftmost,
 * longest first, as Hugging Face's added-token matcher does), each stretch
 * between them encoded by the model. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* Length of the special token at s (0 if none) and its id. */
static size_t match_special(const struct tokenizer *t, const char *s, size_t n, bool parse_special,
                            int32_t *id)
{
    uint8_t c = (uint8_t)s[0];
    for (uint32_t k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
        int32_t i = t->special[k];
        if (!parse_special && t->types[i] != TOK_USER_DEFINED)
            continue;
        if (t->len[i] <= n && !memcmp(s, t->text + t->off[i], t->len[i])) {
            *id = i;
            return t->len[i];
        }
    }
    return 0;
}

struct enc {
    const struct tokenizer *t;
    struct bpe_scratch *bpe;
    struct idvec ids;
};

static bool encode_stretch(struct enc *e, const char *s, size_t n)
{
    if (n == 0)
        return true;
    if (e->t->kind == TOKENIZER_SPM)
        return spm_encode(e->t, s, n, &e->ids);
    if (!e->bpe && !(e->bpe = bpe_scratch_new(e->t)))
        return false;
    return bpe_encode(e->t, e->bpe, s, n, &e->ids);
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                     bool parse_special, int32_t *out, int max_out)
{
    if (!t || (!text && len) || max_out < 0 || (!out && max_out > 0) || len > INT_MAX / 4)
        return -1;
    struct enc e = {t, NULL, {0}};
    bool ok = !(add_bos && t->bos >= 0) || idvec_push(&e.ids, t->bos);
    size_t start = 0;
    for (size_t i = 0; ok && i < len;) {
        int32_t id;
        size_t k = match_special(t, text + i, len - i, parse_special, &id);
        if (!k) {
            i++;
            continue;
        }
        ok = encode_stretch(&e, text + start, i - start) && idvec_push(&e.ids, id);
        i += k;
        start = i;
    }
    ok = ok && encode_stretch(&e, text + start, len - start) && e.ids.n <= INT_MAX;
    int n = ok ? (int)e.ids.n : -1;
    if (ok && n > 0 && max_out > 0)
        memcpy(out, e.ids.v, (size_t)(n < max_out ? n : max_out) * sizeof *out);
    bpe_scratch_free(e.bpe);
    free(e.ids.v);
    return n;
}
