/* Device timing profiles (engine/pace.h) and session traces (engine/trace.h):
 * profiles parse or are refused naming the field, a paced pass never ends
 * before the profile's time (a lower bound; how much later is not tested),
 * and every trace line is a JSON object with the documented fields. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/pace.h"
#include "engine/trace.h"

static char tmp_path[128];

static const char *write_tmp(const char *text)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/tandem-test-pace-%d.json", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return tmp_path;
}

static void test_profile_parses(void **state)
{
    struct pace_profile p;
    char err[256];
    const char *path = write_tmp("{\"device\":\"A100\",\"model\":\"llama2-7b f16\",\"base_ms\":10,"
                                 "\"per_row_ms\":0.5,\"per_ctx_ms\":0.001,\"source\":\"x\"}");
    assert_true(pace_load(path, &p, err, sizeof err));
    assert_string_equal(p.device, "A100");
    assert_string_equal(p.model, "llama2-7b f16");
    /* 10 + 0.5*(4-1) + 0.001*100 */
    assert_float_equal(pace_pass_ms(&p, 4, 100), 11.6, 1e-9);
    assert_float_equal(pace_pass_ms(&p, 1, 0), 10.0, 1e-12);
    /* Without prefill_per_row_ms, long passes continue the per-row slope. */
    assert_float_equal(pace_pass_ms(&p, 40, 0), 10 + 0.5 * 39, 1e-9);
    unlink(path);
    path = write_tmp("{\"device\":\"A\",\"model\":\"m\",\"base_ms\":10,\"per_row_ms\":0.5,"
                     "\"prefill_per_row_ms\":2}");
    assert_true(pace_load(path, &p, err, sizeof err));
    /* 16 decode rows, then 24 prefill rows at 2 ms */
    assert_float_equal(pace_pass_ms(&p, 40, 0), 10 + 0.5 * 15 + 2 * 24, 1e-9);
    assert_float_equal(pace_pass_ms(&p, 16, 0), 10 + 0.5 * 15, 1e-9);
    unlink(path);
    path = write_tmp("{\"device\":\"A\",\"model\":\"m\",\"base_ms\":1,\"per_ctx_row_ms\":0.01}");
    assert_true(pace_load(path, &p, err, sizeof err));
    /* 3 rows after 100 cached positions attend to 100+0, 100+1, 100+2 */
    assert_float_equal(pace_pass_ms(&p, 3, 100), 1 + 0.01 * 3 * (100 + 1), 1e-9);
    unlink(path);
}

static void expect_refused(const char *text, const char *needle)
{
    struct pace_profile p;
    char err[256] = "";
    const char *path = write_tmp(text);
    assert_false(pace_load(path, &p, err, sizeof err));
    if (!strstr(err, needle))
        fail_msg("error '%s' does not name '%s'", err, needle);
    unlink(path);
}

static void test_profile_refused(void **state)
{
    expect_refused("{\"device\":\"x\",\"model\":\"y\"}", "base_ms");
    expect_refused("{\"device\":\"x\",\"model\":\"y\",\"base_ms\":-1}", "base_ms");
    expect_refused("{\"device\":\"x\",\"model\":\"y\",\"base_ms\":\"fast\"}", "base_ms");
    expect_refused("{\"device\":\"x\",\"model\":\"y\",\"base_ms\":1,\"per_row_ms\":1e99}", "per_row_ms");
    expect_refused("{\"model\":\"y\",\"base_ms\":1}", "device");
    expect_refused("[1, 2]", "object");
    expect_refused("{not json", "tandem-test-pace");
    struct pace_profile p;
    char err[256];
    assert_false(pace_load("/nonexistent/profile.json", &p, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/profile.json"));
}

static void test_paced_pass_lower_bound(void **state)
{
    struct pace_profile p = {.base_ms = 30};
    struct pace_pass pp;
    pace_begin(&pp, &p, 1, 0);
    assert_true(pace_wait(&pp, 0.5));
    assert_true(clock_now_s() - pp.t0_s >= 0.015);
    assert_true(pace_wait(&pp, 1.0));
    assert_true(clock_now_s() - pp.t0_s >= 0.030);
    /* Already past: nothing to wait for, reported as over budget. */
    assert_false(pace_wait(&pp, 0.5));
    /* No profile: never waits. */
    pace_begin(&pp, NULL, 8, 1000);
    assert_true(pace_wait(&pp, 1.0));
}

static void test_trace_lines_are_json(void **state)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "/tmp/tandem-test-trace-%d.jsonl", (int)getpid());
    struct trace *t = trace_open(path, "edge", err, sizeof err);
    assert_non_null(t);
    trace_begin(t, 3, 12, "draft");
    trace_end(t, 3, 12, "draft");
    trace_instant(t, 3, 12, "early", -7);
    trace_begin(NULL, 0, 0, "ignored");
    trace_close(t);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    const char *phases = "BEi";
    int n = 0;
    int64_t last_t = 0;
    while (fgets(line, sizeof line, f)) {
        json_object *o = json_tokener_parse(line);
        assert_non_null(o);
        json_object *v;
        assert_true(json_object_object_get_ex(o, "t_us", &v));
        assert_true(json_object_get_int64(v) >= last_t);
        last_t = json_object_get_int64(v);
        assert_true(json_object_object_get_ex(o, "side", &v));
        assert_string_equal(json_object_get_string(v), "edge");
        assert_true(json_object_object_get_ex(o, "session", &v));
        assert_int_equal(json_object_get_int(v), 3);
        assert_true(json_object_object_get_ex(o, "round", &v));
        assert_int_equal(json_object_get_int(v), 12);
        assert_true(json_object_object_get_ex(o, "ph", &v));
        assert_int_equal(json_object_get_string(v)[0], phases[n]);
        assert_int_equal(json_object_object_get_ex(o, "v", &v), n == 2);
        if (n == 2)
            assert_int_equal(json_object_get_int(v), -7);
        json_object_put(o);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 3);
    unlink(path);
    assert_null(trace_open("/nonexistent/dir/t.jsonl", "edge", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/dir/t.jsonl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_parses),
        cmocka_unit_test(test_profile_refused),
        cmocka_unit_test(test_paced_pass_lower_bound),
        cmocka_unit_test(test_trace_lines_are_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
