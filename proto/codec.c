#include "codec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 4096         /* reason / error text / client name */
#define MAX_TOKENS_MSG 65536  /* ids in one TOKENS message */
#define HARD_MAX_GAMMA 1024
#define HARD_MAX_VOCAB (1 << 24)

const char *proto_kind_name(Tandem__Envelope__MsgCase c)
{
    switch (c) {
    case TANDEM__ENVELOPE__MSG_HELLO: return "HELLO";
    case TANDEM__ENVELOPE__MSG_WELCOME: return "WELCOME";
    case TANDEM__ENVELOPE__MSG_OPEN: return "OPEN";
    case TANDEM__ENVELOPE__MSG_DRAFT: return "DRAFT";
    case TANDEM__ENVELOPE__MSG_EARLY: return "EARLY";
    case TANDEM__ENVELOPE__MSG_FINAL: return "FINAL";
    case TANDEM__ENVELOPE__MSG_TOKENS: return "TOKENS";
    case TANDEM__ENVELOPE__MSG_CLOSE: return "CLOSE";
    case TANDEM__ENVELOPE__MSG_ERROR: return "ERROR";
    case TANDEM__ENVELOPE__MSG_PING: return "PING";
    case TANDEM__ENVELOPE__MSG_PONG: return "PONG";
    default: return "NONE";
    }
}

struct check {
    char *err;
    size_t errlen;
    const char *kind;
    bool ok;
};

static bool fail(struct check *c, const char *fmt, ...)
{
    if (!c->ok)
        return false;
    int k = snprintf(c->err, c->errlen, "%s: ", c->kind);
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < c->errlen)
        vsnprintf(c->err + k, c->errlen - k, fmt, ap);
    va_end(ap);
    c->ok = false;
    return false;
}

/* Token ids of a field: every one in [0, vocab) when the vocabulary is known. */
static bool check_ids(struct check *c, const char *field, const int32_t *ids, size_t n, int32_t vocab)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (vocab > 0 && ids[i] >= vocab))
            return fail(c, "%s[%zu] = %d is outside the vocabulary [0, %d)", field, i, ids[i],
                        vocab > 0 ? vocab : HARD_MAX_VOCAB);
    return true;
}

static bool check_text(struct check *c, const char *field, const char *s)
{
    if (s && strlen(s) > MAX_TEXT)
        return fail(c, "%s is longer than %d bytes", field, MAX_TEXT);
    return true;
}

static bool check_fingerprint(struct check *c, const Tandem__Fingerprint *f)
{
    if (!f)
        return fail(c, "fingerprint missing");
    if (f->vocab == 0 || f->vocab > HARD_MAX_VOCAB)
        return fail(c, "fingerprint.vocab %u is not in [1, %d]", f->vocab, HARD_MAX_VOCAB);
    if (f->bos < -1 || f->bos >= (int64_t)f->vocab)
        return fail(c, "fingerprint.bos %d is outside the vocabulary", f->bos);
    if (f->eos < -1 || f->eos >= (int64_t)f->vocab)
        return fail(c, "fingerprint.eos %d is outside the vocabulary", f->eos);
    return true;
}

static bool check_sampling(struct check *c, const Tandem__Sampling *s, int32_t vocab)
{
    if (!s)
        return true; /* greedy */
    if (!isfinite(s->temperature) || s->temperature < 0 || s->temperature > 100)
        return fail(c, "sampling.temperature %g is not in [0, 100]", s->temperature);
    if (!isfinite(s->top_p) || s->top_p < 0 || s->top_p > 1)
        return fail(c, "sampling.top_p %g is not in [0, 1]", s->top_p);
    if (s->top_k > HARD_MAX_VOCAB || (vocab > 0 && s->top_k > (uint32_t)vocab))
        return fail(c, "sampling.top_k %u exceeds the vocabulary", s->top_k);
    return true;
}

static int cmp_id(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The exact distribution a draft token came from: ids unique and in the
 * vocabulary, probabilities in [0, 1] summing to 1, the token itself in it
 * with p > 0 (rejection sampling divides by it). */
static bool check_dist(struct check *c, size_t i, const Tandem__TokenDist *d, int32_t token,
                       int32_t vocab)
{
    if (!d)
        return fail(c, "dists[%zu] missing", i);
    if (d->n_ids == 0 || d->n_ids != d->n_probs)
        return fail(c, "dists[%zu] has %zu ids and %zu probs (need as many, at least 1)", i,
                    d->n_ids, d->n_probs);
    if (vocab > 0 && d->n_ids > (size_t)vocab)
        return fail(c, "dists[%zu] has %zu entries, more than the vocabulary (%d)", i, d->n_ids, vocab);
    char field[32];
    snprintf(field, sizeof field, "dists[%zu].ids", i);
    if (!check_ids(c, field, d->ids, d->n_ids, vocab))
        return false;
    double sum = 0, p_token = 0;
    for (size_t j = 0; j < d->n_probs; j++) {
        float p = d->probs[j];
        if (!isfinite(p) || p < 0 || p > 1)
            return fail(c, "dists[%zu].probs[%zu] = %g is not a probability", i, j, p);
        sum += p;
        if (d->ids[j] == token)
            p_token += p;
    }
    if (fabs(sum - 1.0) > 1e-3)
        return fail(c, "dists[%zu] sums to %.6f, not 1", i, sum);
    if (!(p_token > 0))
        return fail(c, "dists[%zu] gives the drafted token %d no probability", i, token);
    /* uniqueness: sort a copy */
    int32_t *ids = malloc(d->n_ids * sizeof *ids);
    if (!ids)
        return fail(c, "out of memory");
    memcpy(ids, d->ids, d->n_ids * sizeof *ids);
    qsort(ids, d->n_ids, sizeof *ids, cmp_id);
    bool dup = false;
    for (size_t j = 1; j < d->n_ids && !dup; j++)
        dup = ids[j] == ids[j - 1];
    free(ids);
    if (dup)
        return fail(c, "dists[%zu] lists a token id twice", i);
    return true;
}


static bool check_gamma(struct check *c, const char *field, size_t n, const struct proto_limits *lim)
{
    uint32_t max = lim->max_gamma ? lim->max_gamma : HARD_MAX_GAMMA;
    if (n > max)
        return fail(c, "%s %zu exceeds the most draft tokens per round (%u)", field, n, max);
    return true;
}

static bool check_finite_ms(struct check *c, const char *field, float v)
{
    if (!isfinite(v) || v < 0)
        return fail(c, "%s %g is not a duration", field, v);
    return true;
}

bool proto_validate(const proto_msg *m, const struct proto_limits *lim, char *err, size_t errlen)
{
    struct check c = {err, errlen, proto_kind_name(m->msg_case), true};
    int32_t vocab = lim->vocab;
    if (m->version != TANDEM_PROTO_VERSION)
        return fail(&c, "protocol version %u, this side speaks %d", m->version, TANDEM_PROTO_VERSION);
    switch (m->msg_case) {
    case TANDEM__ENVELOPE__MSG_HELLO: {
        const Tandem__Hello *h = m->hello;
        if (h->version != m->version)
            return fail(&c, "version %u differs from the envelope's %u", h->version, m->version);
        return check_fingerprint(&c, h->fingerprint) && check_text(&c, "client", h->client);
    }
    case TANDEM__ENVELOPE__MSG_WELCOME: {
        const Tandem__Welcome *w = m->welcome;
        if (!check_text(&c, "reason", w->reason))
            return false;
        if (!w->accepted)
            return true;
        if (!check_fingerprint(&c, w->fingerprint))
            return false;
        if (w->max_context == 0)
            return fail(&c, "max_context is 0");
        if (w->max_gamma == 0 || w->max_gamma > HARD_MAX_GAMMA)
            return fail(&c, "max_gamma %u is not in [1, %d]", w->max_gamma, HARD_MAX_GAMMA);
        return true;
    }
    case TANDEM__ENVELOPE__MSG_OPEN: {
        const Tandem__Open *o = m->open;
        if (o->n_prompt == 0)
            return fail(&c, "empty prompt");
        if (lim->max_prompt && o->n_prompt > lim->max_prompt)
            return fail(&c, "prompt of %zu tokens exceeds the limit of %u", o->n_prompt, lim->max_prompt);
        if (o->mode < TANDEM__MODE__MODE_SD || o->mode > TANDEM__MODE__MODE_CLOUD_AR_RPC)
            return fail(&c, "unknown mode %d", (int)o->mode);
        if (o->max_tokens > (1u << 24))
            return fail(&c, "max_tokens %u exceeds %u", o->max_tokens, 1u << 24);
        return check_ids(&c, "prompt", o->prompt, o->n_prompt, vocab) &&
               check_sampling(&c, o->sampling, vocab);
    }
    case TANDEM__ENVELOPE__MSG_DRAFT: {
        const Tandem__Draft *d = m->draft;
        if (d->round == 0)
            return fail(&c, "round 0 (rounds start at 1)");
        if (!check_gamma(&c, "tokens", d->n_tokens, lim) ||
            !check_ids(&c, "tokens", d->tokens, d->n_tokens, vocab))
            return false;
        if (d->n_dists != 0 && d->n_dists != d->n_tokens)
            return fail(&c, "%zu dists for %zu tokens (need none or one per token)", d->n_dists,
                        d->n_tokens);
        for (size_t i = 0; i < d->n_dists; i++)
            if (!check_dist(&c, i, d->dists[i], d->tokens[i], vocab))
                return false;
        return true;
    }
    case TANDEM__ENVELOPE__MSG_EARLY: {
        const Tandem__Early *e = m->early;
        if (e->round == 0)
            return fail(&c, "round 0 (rounds start at 1)");
        if (!isfinite(e->confidence) || e->confidence < 0 || e->confidence > 1)
            return fail(&c, "confidence %g is not in [0, 1]", e->confidence);
        return check_gamma(&c, "accepted", e->accepted, lim) &&
               check_ids(&c, "next_token", &e->next_token, 1, vocab);
    }
    case TANDEM__ENVELOPE__MSG_FINAL: {
        const Tandem__Final *f = m->final;
        if (f->round == 0)
            return fail(&c, "round 0 (rounds start at 1)");
        if (f->timings && !(check_finite_ms(&c, "timings.queue_ms", f->timings->queue_ms) &&
                            check_finite_ms(&c, "timings.verify_ms", f->timings->verify_ms) &&
                            check_finite_ms(&c, "timings.early_ms", f->timings->early_ms)))
            return false;
        return check_gamma(&c, "accepted", f->accepted, lim) &&
               check_ids(&c, "next_token", &f->next_token, 1, vocab);
    }
    case TANDEM__ENVELOPE__MSG_TOKENS: {
        const Tandem__Tokens *t = m->tokens;
        if (t->n_tokens > MAX_TOKENS_MSG)
            return fail(&c, "%zu tokens in one message (at most %d)", t->n_tokens, MAX_TOKENS_MSG);
        return check_finite_ms(&c, "busy_ms", t->busy_ms) &&
               check_ids(&c, "tokens", t->tokens, t->n_tokens, vocab);
    }
    case TANDEM__ENVELOPE__MSG_ERROR:
        return check_text(&c, "text", m->error->text);
    case TANDEM__ENVELOPE__MSG_CLOSE:
    case TANDEM__ENVELOPE__MSG_PING:
    case TANDEM__ENVELOPE__MSG_PONG:
        return true;
    default:
        return fail(&c, "the envelope holds no message this version knows");
    }
}

/* Fields this version does not know, anywhere in the message tree. Peers
 * speak the same version, so such a field means a corrupt or foreign frame;
 * refusing it also keeps re-encoding a decoded message faithful. */
static bool has_unknown_fields(const ProtobufCMessage *msg, unsigned *field)
{
    if (msg->n_unknown_fields) {
        *field = msg->unknown_fields[0].tag;
        return true;
    }
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)msg;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (has_unknown_fields(items[j], field))
                    return true;
        } else {
            if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
            if (sub && has_unknown_fields(sub, field))
                return true;
        }
    }
    return false;
}

proto_msg *proto_decode(const void *buf, size_t len, const struct proto_limits *lim, char *err,
                        size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "empty frame");
        return NULL;
    }
    if (len > PROTO_MAX_BYTES) {
        snprintf(err, errlen, "frame of %zu bytes exceeds the limit of %u", len, PROTO_MAX_BYTES);
        return NULL;
    }
    proto_msg *m = tandem__envelope__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, errlen, "not a tandem Envelope (%zu bytes that protobuf cannot parse)", len);
        return NULL;
    }
    unsigned field;
    if (has_unknown_fields(&m->base, &field)) {
        snprintf(err, errlen, "field number %u is not in protocol version %d", field,
                 TANDEM_PROTO_VERSION);
        proto_free(m);
        return NULL;
    }
    if (!proto_validate(m, lim, err, errlen)) {
        proto_free(m);
        return NULL;
    }
    return m;
}

void proto_free(proto_msg *m)
{
    if (m)
        tandem__envelope__free_unpacked(m, NULL);
}

uint8_t *proto_encode(proto_msg *m, size_t *len)
{
    m->version = TANDEM_PROTO_VERSION;
    size_t n = tandem__envelope__get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf)
        *len = tandem__envelope__pack(m, buf);
    return buf;
}
