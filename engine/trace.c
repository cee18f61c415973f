/* Session event traces (see trace.h). */
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct trace {
    FILE *f;
    char side[16];
    pthread_mutex_t lock;
};

struct trace *trace_open(const char *path, const char *side, char *err, size_t errlen)
{
    struct trace *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->f = fopen(path, "w");
    if (!t->f) {
        snprintf(err, errlen, "%s: cannot write the trace (%s)", path, strerror(errno));
        free(t);
        return NULL;
    }
    snprintf(t->side, sizeof t->side, "%s", side);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void trace_close(struct trace *t)
{
    if (!t)
        return;
    fclose(t->f);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Event names are identifiers chosen in code, never user text: no escaping. */
static void emit(struct trace *t, uint64_t session, uint32_t round, const char *ev,
                 const char *ph, bool has_v, int64_t v)
{
    if (!t)
        return;
    int64_t ts = now_us();
    pthread_mutex_lock(&t->lock);
    fprintf(t->f,
            "{\"t_us\":%" PRId64 ",\"side\":\"%s\",\"session\":%" PRIu64
            ",\"round\":%" PRIu32 ",\"ev\":\"%s\",\"ph\":\"%s\"",
            ts, t->side, session, round, ev, ph);
    if (has_v)
        fprintf(t->f, ",\"v\":%" PRId64, v);
    fputs("}\n", t->f);
    fflush(t->f);
    pthread_mutex_unlock(&t->lock);
}

void trace_begin(struct trace *t, uint64_t session, uint32_t round, const char *ev)
{
    emit(t, session, round, ev, "B", false, 0);
}

void trace_end(struct trace *t, uint64_t session, uint32_t round, const char *ev)
{
    emit(t, session, round, ev, "E", false, 0);
}

void trace_instant(struct trace *t, uint64_t session, uint32_t round, const char *ev, int64_t v)
{
    emit(t, session, round, ev, "i", true, v);
}
