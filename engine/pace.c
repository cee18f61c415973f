/* Device timing profiles (see pace.h). */
#include "pace.h"
#include "clock.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool get_str(json_object *root, const char *key, char *dst, size_t cap, const char *path,
                    char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "%s: \"%s\" must be a string", path, key);
        return false;
    }
    snprintf(dst, cap, "%s", json_object_get_string(v));
    return true;
}

/* A cost in ms: a finite number >= 0 and below an hour; absent = 0 unless
 * required. */
static bool get_ms(json_object *root, const char *key, bool required, double *out,
                   const char *path, char *err, size_t errlen)
{
    json_object *v;
    *out = 0;
    if (!json_object_object_get_ex(root, key, &v)) {
        if (required)
            snprintf(err, errlen, "%s: \"%s\" is missing", path, key);
        return !required;
    }
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
        snprintf(err, errlen, "%s: \"%s\" must be a number of milliseconds", path, key);
        return false;
    }
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < 0 || d > 3.6e6) {
        snprintf(err, errlen, "%s: \"%s\" = %g is not a time in [0, 3600000] ms", path, key, d);
        return false;
    }
    *out = d;
    return true;
}

bool pace_load(const char *path, struct pace_profile *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    json_object *root = json_object_from_file(path);
    if (!root) {
        snprintf(err, errlen, "%s: cannot read a JSON profile (%s)", path,
                 errno ? strerror(errno) : json_util_get_last_err());
        return false;
    }
    bool ok = json_object_is_type(root, json_type_object);
    if (!ok)
        snprintf(err, errlen, "%s: a profile is a JSON object", path);
    ok = ok && get_str(root, "device", p->device, sizeof p->device, path, err, errlen) &&
         get_str(root, "model", p->model, sizeof p->model, path, err, errlen) &&
         get_ms(root, "base_ms", true, &p->base_ms, path, err, errlen) &&
         get_ms(root, "per_row_ms", false, &p->per_row_ms, path, err, errlen) &&
         get_ms(root, "per_ctx_ms", false, &p->per_ctx_ms, path, err, errlen) &&
         get_ms(root, "prefill_per_row_ms", false, &p->prefill_per_row_ms, path, err, errlen) &&
         get_ms(root, "per_ctx_row_ms", false, &p->per_ctx_row_ms, path, err, errlen);
    if (ok && !json_object_object_get_ex(root, "prefill_per_row_ms", NULL))
        p->prefill_per_row_ms = p->per_row_ms;
    json_object_put(root);
    return ok;
}

double pace_pass_ms(const struct pace_profile *p, int rows, int ctx)
{
    int decode_rows = rows < PACE_DECODE_ROWS ? rows : PACE_DECODE_ROWS;
    return p->base_ms + p->per_row_ms * (double)(decode_rows - 1) +
           p->prefill_per_row_ms * (double)(rows - decode_rows) + p->per_ctx_ms * (double)ctx +
           p->per_ctx_row_ms * (double)rows * ((double)ctx + (double)(rows - 1) / 2);
}

void pace_begin(struct pace_pass *pp, const struct pace_profile *p, int rows, int ctx)
{
    pp->t0_s = clock_now_s();
    pp->total_ms = p ? pace_pass_ms(p, rows, ctx) : 0;
}

bool pace_wait(const struct pace_pass *pp, double fraction)
{
    double until = pp->t0_s + 1e-3 * pp->total_ms * fraction;
    double now = clock_now_s();
    if (pp->total_ms <= 0)
        return true;
    if (now >= until)
        return false;
    double dt = until - now;
    struct timespec ts = {(time_t)dt, (long)((dt - floor(dt)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return true;
}
