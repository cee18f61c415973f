/* tandem train-exits, split by job: option parsing and dispatch
 * (cmd_train_exits.c), fitting (exit_train.c), the report (exit_report.c).
 * Drafts are exported by the engine (engine/exits_draft.h). */
#ifndef TANDEM_TOOLS_TRAIN_EXITS_H
#define TANDEM_TOOLS_TRAIN_EXITS_H

#include <stdbool.h>
#include <stddef.h>
#include "corpus.h"

#define MAX_EXITS 64

struct train_opts {
    const char *model, *data, *out;
    int layers[MAX_EXITS], n_layers;
    bool no_adapter, json;
    int rank, tokens, gen, ctx, threads;
    float holdout, precision;
    /* --report: on the exits of `out` after fitting, else of `model` */
    bool report;
    const char *report_data; /* every prompt of it; NULL: the held-out share of data */
    const char *report_json; /* also write the report's JSON here */
    int report_tokens;
    int export_draft;        /* > 0: write the first N layers as a draft to `out` */
};

/* Fits the exits at o->layers on corpus c, writes o->out, prints the
 * summary. false + err on failure (nothing is written). */
bool exits_train(const struct train_opts *o, const struct corpus *c, char *err, size_t errlen);

/* The report on the exits stored in model_path (docs/exits.md): table on
 * stdout (JSON with o->json), JSON to o->report_json. c is the corpus of
 * o->data when the report reads its held-out share. */
bool exits_report(const struct train_opts *o, const char *model_path, const struct corpus *c,
                  char *err, size_t errlen);

#endif
