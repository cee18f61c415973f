/* Trace merging and per-round breakdowns (see prof.h). */
#include "prof.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 4096

static bool field_i64(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static bool field_str(json_object *o, const char *key, const char **out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    *out = json_object_get_string(v);
    return true;
}

/* Parses one trace line into e; NULL on success, else what is wrong. */
static const char *parse_event(json_object *o, struct prof_event *e, int64_t *session)
{
    int64_t round;
    const char *ev, *ph;
    if (!json_object_is_type(o, json_type_object))
        return "not a JSON object";
    if (!field_i64(o, "t_us", &e->t_us))
        return "\"t_us\" missing or not an integer";
    if (!field_i64(o, "session", session))
        return "\"session\" missing or not an integer";
    if (!field_i64(o, "round", &round) || round < 0 || round > UINT32_MAX)
        return "\"round\" missing or out of range";
    if (!field_str(o, "ev", &ev) || strlen(ev) == 0 || strlen(ev) >= sizeof e->ev)
        return "\"ev\" missing or longer than 15 bytes";
    if (!field_str(o, "ph", &ph) || strlen(ph) != 1 || !strchr("BEi", ph[0]))
        return "\"ph\" must be \"B\", \"E\" or \"i\"";
    e->round = (uint32_t)round;
    snprintf(e->ev, sizeof e->ev, "%s", ev);
    e->ph = ph[0];
    e->v = 0;
    if (e->ph == 'i' && !field_i64(o, "v", &e->v))
        return "instant without an integer \"v\"";
    return NULL;
}

bool prof_read(struct prof *p, const char *path, enum prof_side side, int64_t session,
               char *err, size_t errlen)
{
    size_t *cap = &p->events_cap;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[MAX_LINE];
    long lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '\n')
            continue;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%ld: line longer than %d bytes", path, lineno, MAX_LINE);
            ok = false;
            break;
        }
        json_object *o = json_tokener_parse(line);
        struct prof_event e = {.side = side};
        int64_t s = 0;
        const char *why = o ? parse_event(o, &e, &s) : "not JSON";
        json_object_put(o);
        if (why) {
            snprintf(err, errlen, "%s:%ld: %s", path, lineno, why);
            ok = false;
        } else if (session < 0 || s == session) {
            if (p->n_events == *cap) {
                *cap = *cap ? *cap * 2 : 256;
                struct prof_event *grown = realloc(p->events, *cap * sizeof *grown);
                if (!grown) {
                    snprintf(err, errlen, "out of memory");
                    ok = false;
                    break;
                }
                p->events = grown;
            }
            p->events[p->n_events++] = e;
        }
    }
    fclose(f);
    return ok;
}

static int by_time(const void *a, const void *b)
{
    const struct prof_event *x = a, *y = b;
    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    return x->side - y->side;
}

/* ---- lookups over the sorted events ---- */

static int64_t instant(const struct prof *p, enum prof_side side, uint32_t round, const char *ev)
{
    for (size_t i = 0; i < p->n_events; i++) {
        const struct prof_event *e = &p->events[i];
        if (e->side == side && e->round == round && e->ph == 'i' && strcmp(e->ev, ev) == 0)
            return e->t_us;
    }
    return -1;
}

/* Pairs every B with the next E of its side, round and name. Spans of one
 * name never nest within a round, so a B before the previous one closed is
 * a malformed trace and is left unpaired. */
static bool collect_spans(struct prof *p)
{
    p->spans = calloc(p->n_events ? p->n_events : 1, sizeof *p->spans);
    if (!p->spans)
        return false;
    for (size_t i = 0; i < p->n_events; i++) {
        const struct prof_event *b = &p->events[i];
        if (b->ph != 'B')
            continue;
        for (size_t j = i + 1; j < p->n_events; j++) {
            const struct prof_event *x = &p->events[j];
            if (x->side != b->side || x->round != b->round || strcmp(x->ev, b->ev) != 0)
                continue;
            if (x->ph == 'E') {
                struct prof_span *s = &p->spans[p->n_spans++];
                *s = (struct prof_span){.side = b->side, .round = b->round, .b_us = b->t_us, .e_us = x->t_us};
                memcpy(s->ev, b->ev, sizeof s->ev);
            }
            if (x->ph != 'i')
                break;
        }
    }
    return true;
}

static const struct prof_span *span(const struct prof *p, enum prof_side side, uint32_t round,
                                    const char *ev)
{
    for (size_t i = 0; i < p->n_spans; i++) {
        const struct prof_span *s = &p->spans[i];
        if (s->side == side && s->round == round && strcmp(s->ev, ev) == 0)
            return s;
    }
    return NULL;
}

/* Microseconds of [lo, hi) covered by spans of one side (a side does one
 * thing at a time, so its spans do not overlap each other). */
static int64_t busy_us(const struct prof *p, enum prof_side side, int64_t lo, int64_t hi)
{
    int64_t total = 0;
    for (size_t i = 0; i < p->n_spans; i++) {
        const struct prof_span *x = &p->spans[i];
        int64_t s = x->b_us > lo ? x->b_us : lo, t = x->e_us < hi ? x->e_us : hi;
        if (x->side == side && t > s)
            total += t - s;
    }
    return total;
}

static double ms_between(int64_t a, int64_t b) { return a >= 0 && b >= 0 ? (double)(b - a) / 1e3 : -1; }

static double span_ms(const struct prof *p, enum prof_side side, uint32_t round, const char *ev)
{
    const struct prof_span *s = span(p, side, round, ev);
    return s ? (double)(s->e_us - s->b_us) / 1e3 : -1;
}

static void compute_round(const struct prof *p, uint32_t r, int64_t start, int64_t next_start,
                          struct prof_round *out)
{
    int64_t early = instant(p, PROF_CLOUD, r, "send_early");
    const struct prof_span *verify = span(p, PROF_CLOUD, r, "verify");
    int64_t vb = verify ? verify->b_us : -1, ve = verify ? verify->e_us : -1;
    int64_t end = next_start >= 0 ? next_start : instant(p, PROF_EDGE, r, "recv_final");
    *out = (struct prof_round){
        .round = r,
        .draft = span_ms(p, PROF_EDGE, r, "draft"),
        .up = ms_between(start, instant(p, PROF_CLOUD, r, "recv_draft")),
        .to_exit = ms_between(vb, early),
        .early_flight = ms_between(early, instant(p, PROF_EDGE, r, "recv_early")),
        .predraft = span_ms(p, PROF_EDGE, r + 1, "predraft"),
        .rest = early >= 0 ? ms_between(early, ve) : ms_between(vb, ve),
        .final_flight = ms_between(instant(p, PROF_CLOUD, r, "send_final"),
                                   instant(p, PROF_EDGE, r, "recv_final")),
        .round_ms = ms_between(start, end),
        .edge_idle = -1,
        .cloud_idle = -1,
    };
    if (end >= 0) {
        out->edge_idle = (double)(end - start - busy_us(p, PROF_EDGE, start, end)) / 1e3;
        out->cloud_idle = (double)(end - start - busy_us(p, PROF_CLOUD, start, end)) / 1e3;
    }
}

bool prof_load(struct prof *p, const char *edge_path, const char *cloud_path, int64_t session,
               char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    size_t n_edge = 0;
    if (!prof_read(p, edge_path, PROF_EDGE, -1, err, errlen) ||
        !((n_edge = p->n_events), prof_read(p, cloud_path, PROF_CLOUD, session, err, errlen))) {
        prof_free(p);
        return false;
    }
    if (n_edge == 0 || p->n_events == n_edge) {
        if (n_edge == 0)
            snprintf(err, errlen, "%s: no events", edge_path);
        else if (session >= 0)
            snprintf(err, errlen, "%s: no events of session %lld", cloud_path, (long long)session);
        else
            snprintf(err, errlen, "%s: no events", cloud_path);
        prof_free(p);
        return false;
    }
    qsort(p->events, p->n_events, sizeof *p->events, by_time);
    p->t0_us = p->events[0].t_us;
    if (!collect_spans(p)) {
        snprintf(err, errlen, "out of memory");
        prof_free(p);
        return false;
    }

    /* Rounds in the order the edge sent them. */
    size_t n_send = 0;
    for (size_t i = 0; i < p->n_events; i++)
        n_send += p->events[i].side == PROF_EDGE && strcmp(p->events[i].ev, "send_draft") == 0;
    p->rounds = calloc(n_send ? n_send : 1, sizeof *p->rounds);
    if (!p->rounds) {
        snprintf(err, errlen, "out of memory");
        prof_free(p);
        return false;
    }
    const struct prof_event *prev = NULL;
    for (size_t i = 0; i <= p->n_events; i++) {
        const struct prof_event *e = i < p->n_events ? &p->events[i] : NULL;
        if (e && !(e->side == PROF_EDGE && strcmp(e->ev, "send_draft") == 0))
            continue;
        if (prev)
            compute_round(p, prev->round, prev->t_us, e ? e->t_us : -1, &p->rounds[p->n_rounds++]);
        prev = e;
    }
    return true;
}

void prof_free(struct prof *p)
{
    free(p->events);
    free(p->spans);
    free(p->rounds);
    memset(p, 0, sizeof *p);
}
