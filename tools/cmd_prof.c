/* tandem prof: per-round latency breakdown from an edge and a cloud trace,
 * a Chrome trace (opens in Perfetto) and a Gantt chart (SVG). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "prof.h"

static void prof_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem prof --edge EDGE.jsonl --cloud CLOUD.jsonl [options]\n\n"
            "Merges the traces that `tandem edge --trace` and `tandem cloud --trace` wrote\n"
            "and prints, for each round, where the time went (milliseconds):\n"
            "  draft    edge drafting the round's tokens\n"
            "  up       DRAFT in flight to the cloud\n"
            "  to_exit  cloud verifying up to the early exit\n"
            "  early    EARLY in flight to the edge\n"
            "  predraft edge pre-drafting the next round from EARLY\n"
            "  rest     cloud verifying after the exit (the whole pass without one)\n"
            "  final    FINAL in flight to the edge\n"
            "  wall     send of this round's DRAFT to the next one's\n"
            "  e_idle, c_idle   time in the round each side did no work\n"
            "'-' where the traces have no such event (e.g. no exits in sd mode).\n\n"
            "      --edge FILE       the edge's trace\n"
            "      --cloud FILE      the cloud's trace\n"
            "      --session N       the cloud's session to take, numbered from 1 in the order\n"
            "                        the cloud opened them (default: every event)\n"
            "      --json            the rounds as JSON on stdout instead of a table\n"
            "      --chrome FILE     write a Chrome trace-event JSON file\n"
            "      --svg FILE        write a Gantt chart of both sides\n"
            "      --svg-rounds N    rounds drawn in the chart (default 12)\n"
            "  -h, --help            this text\n");
}

#define N_COLS 10

static void round_cols(const struct prof_round *r, double *c)
{
    const double v[N_COLS] = {r->draft, r->up,    r->to_exit,  r->early_flight, r->predraft,
                              r->rest,  r->final_flight, r->round_ms, r->edge_idle, r->cloud_idle};
    memcpy(c, v, sizeof v);
}

static const char *const col_names[N_COLS] = {"draft", "up",    "to_exit", "early", "predraft",
                                              "rest",  "final", "wall",    "e_idle", "c_idle"};

static void print_table(const struct prof *p)
{
    double sum[N_COLS] = {0};
    int cnt[N_COLS] = {0};
    printf("%6s", "round");
    for (int j = 0; j < N_COLS; j++)
        printf(" %8s", col_names[j]);
    printf("\n");
    for (size_t i = 0; i < p->n_rounds; i++) {
        double c[N_COLS];
        round_cols(&p->rounds[i], c);
        printf("%6u", p->rounds[i].round);
        for (int j = 0; j < N_COLS; j++) {
            if (c[j] < 0) {
                printf(" %8s", "-");
                continue;
            }
            printf(" %8.2f", c[j]);
            sum[j] += c[j];
            cnt[j]++;
        }
        printf("\n");
    }
    printf("%6s", "mean");
    for (int j = 0; j < N_COLS; j++)
        cnt[j] ? printf(" %8.2f", sum[j] / cnt[j]) : printf(" %8s", "-");
    printf("\n");
}

static void print_json(const struct prof *p)
{
    printf("{\"rounds\":[");
    for (size_t i = 0; i < p->n_rounds; i++) {
        double c[N_COLS];
        round_cols(&p->rounds[i], c);
        printf("%s{\"round\":%u", i ? "," : "", p->rounds[i].round);
        for (int j = 0; j < N_COLS; j++)
            c[j] < 0 ? printf(",\"%s\":null", col_names[j]) : printf(",\"%s\":%.3f", col_names[j], c[j]);
        printf("}");
    }
    printf("]}\n");
}

static const char *const side_name[2] = {"edge", "cloud"};

/* Message flows drawn as arrows: the send instant on one side and the
 * receive instant of the same round on the other. */
static const struct {
    const char *send, *recv;
    int from;
} flows[] = {
    {"send_draft", "recv_draft", PROF_EDGE},
    {"send_early", "recv_early", PROF_CLOUD},
    {"send_final", "recv_final", PROF_CLOUD},
};

static bool write_chrome(const struct prof *p, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
    for (int s = 0; s < 2; s++)
        fprintf(f, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"%s\"}}",
                s ? "," : "", s + 1, side_name[s]);
    for (size_t i = 0; i < p->n_events; i++) {
        const struct prof_event *e = &p->events[i];
        fprintf(f, ",{\"name\":\"%s\",\"ph\":\"%c\",\"ts\":%lld,\"pid\":%d,\"tid\":1", e->ev,
                e->ph, (long long)(e->t_us - p->t0_us), e->side + 1);
        if (e->ph == 'i')
            fprintf(f, ",\"s\":\"t\",\"args\":{\"round\":%u,\"v\":%lld}}", e->round, (long long)e->v);
        else
            fprintf(f, ",\"args\":{\"round\":%u}}", e->round);
        for (size_t k = 0; k < sizeof flows / sizeof flows[0]; k++) {
            bool is_send = (int)e->side == flows[k].from && strcmp(e->ev, flows[k].send) == 0;
            bool is_recv = (int)e->side != flows[k].from && strcmp(e->ev, flows[k].recv) == 0;
            if (is_send || is_recv)
                fprintf(f,
                        ",{\"name\":\"%s\",\"cat\":\"msg\",\"ph\":\"%s\",\"id\":%llu,\"ts\":%lld,"
                        "\"pid\":%d,\"tid\":1%s}",
                        flows[k].send + 5, is_send ? "s" : "f",
                        (unsigned long long)e->round * 4 + k, (long long)(e->t_us - p->t0_us),
                        e->side + 1, is_recv ? ",\"bp\":\"e\"" : "");
        }
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0;
}

static const char *span_color(const char *ev)
{
    return strcmp(ev, "draft") == 0 ? "#4e79a7"
         : strcmp(ev, "predraft") == 0 ? "#59a14f"
         : strcmp(ev, "verify") == 0 ? "#e15759"
                                     : "#bab0ac";
}

static bool write_svg(const struct prof *p, const char *path, int max_rounds)
{
    if (p->n_rounds == 0)
        return false;
    size_t last = (size_t)max_rounds < p->n_rounds ? (size_t)max_rounds : p->n_rounds;
    int64_t t_end = -1;
    for (size_t i = 0; i < p->n_events; i++) {
        const struct prof_event *e = &p->events[i];
        if (e->round <= p->rounds[last - 1].round && e->t_us > t_end)
            t_end = e->t_us;
    }
    const double width = 1100, left = 70, lane_y[2] = {40, 130}, lane_h = 40;
    double span_us = (double)(t_end - p->t0_us);
    if (span_us <= 0)
        span_us = 1;
    double scale = (width - left - 20) / span_us;
#define X(t) (left + ((double)((t) - p->t0_us)) * scale)
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"230\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", width);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    for (int s = 0; s < 2; s++)
        fprintf(f, "<text x=\"8\" y=\"%.0f\">%s</text>\n", lane_y[s] + lane_h / 2 + 4, side_name[s]);
    for (size_t i = 0; i < p->n_spans; i++) {
        const struct prof_span *s = &p->spans[i];
        if (s->b_us > t_end)
            continue;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\">"
                   "<title>%s round %u: %.2f ms</title></rect>\n",
                X(s->b_us), lane_y[s->side], X(s->e_us) - X(s->b_us), lane_h, span_color(s->ev),
                s->ev, s->round, (double)(s->e_us - s->b_us) / 1e3);
    }
    for (size_t i = 0; i < p->n_events; i++) {
        const struct prof_event *e = &p->events[i];
        if (e->t_us > t_end || e->ph != 'i')
            continue;
        for (size_t k = 0; k < sizeof flows / sizeof flows[0]; k++) {
            if ((int)e->side != flows[k].from || strcmp(e->ev, flows[k].send) != 0)
                continue;
            for (size_t j = i; j < p->n_events; j++) {
                const struct prof_event *r = &p->events[j];
                if ((int)r->side != flows[k].from && r->round == e->round &&
                    strcmp(r->ev, flows[k].recv) == 0) {
                    double y0 = e->side == PROF_EDGE ? lane_y[0] + lane_h : lane_y[1];
                    double y1 = e->side == PROF_EDGE ? lane_y[1] : lane_y[0] + lane_h;
                    fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
                               "stroke=\"#333\" stroke-width=\"1\"><title>%s round %u</title></line>\n",
                            X(e->t_us), y0, X(r->t_us), y1, flows[k].send + 5, e->round);
                    break;
                }
            }
        }
    }
    for (int k = 0; k <= 10; k++) {
        double t = span_us * k / 10;
        fprintf(f, "<text x=\"%.1f\" y=\"200\" text-anchor=\"middle\">%.0f ms</text>\n",
                left + t * scale, t / 1e3);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"222\">draft (blue), pre-draft (green), verify (red); "
               "lines: DRAFT, EARLY, FINAL in flight</text>\n</svg>\n", left);
#undef X
    return fclose(f) == 0;
}

int cmd_prof(int argc, char **argv)
{
    enum { O_EDGE = 256, O_CLOUD, O_SESSION, O_JSON, O_CHROME, O_SVG, O_SVG_ROUNDS };
    static const struct option opts[] = {
        {"edge", required_argument, 0, O_EDGE},     {"cloud", required_argument, 0, O_CLOUD},
        {"session", required_argument, 0, O_SESSION}, {"json", no_argument, 0, O_JSON},
        {"chrome", required_argument, 0, O_CHROME}, {"svg", required_argument, 0, O_SVG},
        {"svg-rounds", required_argument, 0, O_SVG_ROUNDS}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *edge = NULL, *cloud = NULL, *chrome = NULL, *svg = NULL;
    uint64_t session = 0;
    bool by_session = false, json = false;
    int svg_rounds = 12;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_EDGE: edge = optarg; break;
        case O_CLOUD: cloud = optarg; break;
        case O_SESSION: ok = arg_u64("--session", optarg, &session); by_session = true; break;
        case O_JSON: json = true; break;
        case O_CHROME: chrome = optarg; break;
        case O_SVG: svg = optarg; break;
        case O_SVG_ROUNDS: ok = arg_int("--svg-rounds", optarg, 1, 100000, &svg_rounds); break;
        case 'h': prof_usage(stdout); return 0;
        default: prof_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem prof: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!edge || !cloud) {
        fprintf(stderr, "tandem prof: --edge and --cloud traces are required\n");
        return 2;
    }
    struct prof p;
    char err[512];
    if (!prof_load(&p, edge, cloud, by_session ? (int64_t)session : -1, err, sizeof err)) {
        fprintf(stderr, "tandem prof: %s\n", err);
        return 1;
    }
    int rc = 0;
    json ? print_json(&p) : print_table(&p);
    if (chrome && !write_chrome(&p, chrome)) {
        fprintf(stderr, "tandem prof: cannot write %s\n", chrome);
        rc = 1;
    }
    if (svg && !write_svg(&p, svg, svg_rounds)) {
        fprintf(stderr, "tandem prof: cannot write %s (or no rounds to draw)\n", svg);
        rc = 1;
    }
    prof_free(&p);
    return rc;
}
