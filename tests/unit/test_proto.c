/* The wire codec (proto/codec.h): every message survives encode/decode, and
 * hostile bytes — truncated, wrong version, ids outside the vocabulary, huge
 * counts, bad distributions — give NULL and an error naming the field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"

static const struct proto_limits lim = {.vocab = 100, .max_prompt = 64, .max_gamma = 8};

/* Encodes m, decodes it under lim; returns the decoded message or NULL with err. */
static proto_msg *round_trip(proto_msg *m, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    assert_non_null(buf);
    proto_msg *d = proto_decode(buf, len, &lim, err, errlen);
    free(buf);
    return d;
}

static void expect_refused(proto_msg *m, const char *want)
{
    char err[256] = "";
    proto_msg *d = round_trip(m, err, sizeof err);
    if (d || !strstr(err, want))
        fail_msg("expected an error containing '%s', got %s '%s'", want, d ? "a message" : "", err);
}

static void test_hello_welcome(void **state)
{
    Tandem__Fingerprint fp = TANDEM__FINGERPRINT__INIT;
    fp.tokenizer_hash = 0x1234567890abcdefull;
    fp.vocab = 100;
    fp.bos = 1;
    fp.eos = 2;
    Tandem__Hello h = TANDEM__HELLO__INIT;
    h.version = TANDEM_PROTO_VERSION;
    h.fingerprint = &fp;
    h.client = "test";
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_HELLO;
    m.hello = &h;
    char err[256];
    proto_msg *d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->msg_case, TANDEM__ENVELOPE__MSG_HELLO);
    assert_true(d->hello->fingerprint->tokenizer_hash == fp.tokenizer_hash);
    assert_int_equal(d->hello->fingerprint->eos, 2);
    assert_string_equal(d->hello->client, "test");
    proto_free(d);

    fp.eos = 100;
    expect_refused(&m, "fingerprint.eos 100");
    fp.eos = 2;
    h.fingerprint = NULL;
    expect_refused(&m, "HELLO: fingerprint missing");
    h.fingerprint = &fp;
    h.version = 7;
    expect_refused(&m, "version 7");

    Tandem__Welcome w = TANDEM__WELCOME__INIT;
    w.accepted = false;
    w.reason = "tokenizers differ";
    m.msg_case = TANDEM__ENVELOPE__MSG_WELCOME;
    m.welcome = &w;
    d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_false(d->welcome->accepted);
    assert_string_equal(d->welcome->reason, "tokenizers differ");
    proto_free(d);
    w.accepted = true;
    expect_refused(&m, "WELCOME: fingerprint missing");
}

static void test_open(void **state)
{
    int32_t prompt[3] = {1, 5, 99};
    Tandem__Sampling s = TANDEM__SAMPLING__INIT;
    s.temperature = 0.7f;
    s.top_k = 20;
    s.top_p = 0.9f;
    s.seed = 3;
    Tandem__Open o = TANDEM__OPEN__INIT;
    o.n_prompt = 3;
    o.prompt = prompt;
    o.sampling = &s;
    o.max_tokens = 16;
    o.mode = TANDEM__MODE__MODE_SD_EE;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_OPEN;
    m.open = &o;
    char err[256];
    proto_msg *d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->open->n_prompt, 3);
    assert_int_equal(d->open->prompt[2], 99);
    assert_int_equal(d->open->mode, TANDEM__MODE__MODE_SD_EE);
    assert_true(d->open->sampling->top_p == 0.9f);
    proto_free(d);

    prompt[2] = 100;
    expect_refused(&m, "prompt[2] = 100 is outside the vocabulary");
    prompt[2] = -1;
    expect_refused(&m, "prompt[2] = -1");
    prompt[2] = 7;
    s.top_p = 1.5f;
    expect_refused(&m, "sampling.top_p");
    s.top_p = 1;
    o.mode = 9;
    expect_refused(&m, "unknown mode 9");
    o.mode = TANDEM__MODE__MODE_SD;
    o.n_prompt = 0;
    expect_refused(&m, "empty prompt");
    int32_t *big = calloc(65, sizeof *big);
    o.prompt = big;
    o.n_prompt = 65;
    expect_refused(&m, "prompt of 65 tokens exceeds");
    free(big);
}

static void test_draft(void **state)
{
    int32_t toks[2] = {4, 8};
    int32_t ids0[3] = {4, 5, 6}, ids1[2] = {8, 9};
    float p0[3] = {0.5f, 0.3f, 0.2f}, p1[2] = {0.75f, 0.25f};
    Tandem__TokenDist d0 = TANDEM__TOKEN_DIST__INIT, d1 = TANDEM__TOKEN_DIST__INIT;
    d0.n_ids = d0.n_probs = 3;
    d0.ids = ids0;
    d0.probs = p0;
    d1.n_ids = d1.n_probs = 2;
    d1.ids = ids1;
    d1.probs = p1;
    Tandem__TokenDist *dists[2] = {&d0, &d1};
    Tandem__Draft dr = TANDEM__DRAFT__INIT;
    dr.round = 3;
    dr.start = 10;
    dr.n_tokens = 2;
    dr.tokens = toks;
    dr.n_dists = 2;
    dr.dists = dists;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_DRAFT;
    m.draft = &dr;
    char err[256];
    proto_msg *d = round_trip(&m, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    assert_int_equal(d->draft->round, 3);
    assert_int_equal(d->draft->start, 10);
    assert_int_equal(d->draft->dists[1]->ids[1], 9);
    assert_true(d->draft->dists[0]->probs[0] == 0.5f);
    proto_free(d);

    p1[1] = 0.5f;
    expect_refused(&m, "dists[1] sums to");
    p1[1] = 0.25f;
    ids1[1] = 8;
    expect_refused(&m, "twice");
    ids1[1] = 9;
    toks[1] = 9; /* drafted token 9 has p 0.25: fine */
    d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    proto_free(d);
    toks[1] = 7;
    expect_refused(&m, "gives the drafted token 7 no probability");
    toks[1] = 8;
    dr.n_dists = 1;
    expect_refused(&m, "1 dists for 2 tokens");
    dr.n_dists = 0; /* greedy: no distributions */
    d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    proto_free(d);
    dr.round = 0;
    expect_refused(&m, "round 0");
    dr.round = 1;
    int32_t many[9] = {0};
    dr.tokens = many;
    dr.n_tokens = 9;
    expect_refused(&m, "tokens 9 exceeds");
}

static void test_verdicts(void **state)
{
    Tandem__Early e = TANDEM__EARLY__INIT;
    e.round = 2;
    e.exit_layer = 1;
    e.accepted = 3;
    e.next_token = 42;
    e.confidence = 0.95f;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_EARLY;
    m.early = &e;
    char err[256];
    proto_msg *d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->early->next_token, 42);
    proto_free(d);
    e.confidence = 1.5f;
    expect_refused(&m, "confidence");

    Tandem__CloudTimings t = TANDEM__CLOUD_TIMINGS__INIT;
    t.verify_ms = 12.5f;
    Tandem__Final f = TANDEM__FINAL__INIT;
    f.round = 2;
    f.accepted = 8;
    f.next_token = 99;
    f.timings = &t;
    m.msg_case = TANDEM__ENVELOPE__MSG_FINAL;
    m.final = &f;
    d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_true(d->final->timings->verify_ms == 12.5f);
    proto_free(d);
    f.accepted = 9;
    expect_refused(&m, "accepted 9 exceeds");
    f.accepted = 1;
    t.queue_ms = -1;
    expect_refused(&m, "timings.queue_ms");

    Tandem__Error er = TANDEM__ERROR__INIT;
    er.code = TANDEM__ERROR_CODE__ERROR_IDLE;
    er.text = "idle";
    m.msg_case = TANDEM__ENVELOPE__MSG_ERROR;
    m.error = &er;
    d = round_trip(&m, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(d->error->code, TANDEM__ERROR_CODE__ERROR_IDLE);
    proto_free(d);
}

/* Bytes that are not a valid message of this version. */
static void test_hostile_bytes(void **state)
{
    char err[256];
    assert_null(proto_decode("", 0, &lim, err, sizeof err));
    assert_non_null(strstr(err, "empty"));
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_null(proto_decode(junk, sizeof junk, &lim, err, sizeof err));
    assert_non_null(strstr(err, "not a tandem Envelope"));

    /* every truncation of a valid DRAFT: never a crash; a prefix that still
     * parses must still validate or be refused with a message */
    int32_t toks[4] = {1, 2, 3, 4};
    Tandem__Draft dr = TANDEM__DRAFT__INIT;
    dr.round = 5;
    dr.n_tokens = 4;
    dr.tokens = toks;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_DRAFT;
    m.draft = &dr;
    size_t len;
    uint8_t *buf = proto_encode(&m, &len);
    for (size_t k = 0; k < len; k++) {
        err[0] = 0;
        proto_msg *d = proto_decode(buf, k, &lim, err, sizeof err);
        if (d)
            proto_free(d);
        else
            assert_true(err[0] != 0);
    }
    /* wrong version */
    proto_msg *ok = proto_decode(buf, len, &lim, err, sizeof err);
    assert_non_null(ok);
    proto_free(ok);
    /* a field this version does not know (field 100, varint 1) */
    uint8_t *more = malloc(len + 3);
    memcpy(more, buf, len);
    memcpy(more + len, "\xa0\x06\x01", 3);
    assert_null(proto_decode(more, len + 3, &lim, err, sizeof err));
    assert_non_null(strstr(err, "field number 100 is not in protocol version 1"));
    free(more);
    buf[1] = 2; /* field 1 (version) is the first byte pair: 0x08 0x01 */
    assert_int_equal(buf[0], 0x08);
    assert_null(proto_decode(buf, len, &lim, err, sizeof err));
    assert_non_null(strstr(err, "protocol version 2, this side speaks 1"));
    free(buf);

    /* an envelope with no message */
    proto_msg empty = TANDEM__ENVELOPE__INIT;
    buf = proto_encode(&empty, &len);
    assert_null(proto_decode(buf, len, &lim, err, sizeof err));
    assert_non_null(strstr(err, "no message"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_welcome), cmocka_unit_test(test_open),
        cmocka_unit_test(test_draft),         cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_hostile_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
