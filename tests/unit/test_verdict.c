/* Greedy verdicts on hand-made argmax rows: every draft accepted (the next
 * token is the bonus from row γ), the first rejected, a rejection in the
 * middle that later rows cannot undo, and the confidence of a verdict. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/verdict.h"

static void expect(const int32_t *draft, const int32_t *target, int gamma, int a, int32_t t)
{
    struct verdict v = verdict_greedy(draft, target, gamma);
    assert_int_equal(v.accepted, a);
    assert_int_equal(v.next, t);
}

static void test_all_accepted(void **state)
{
    (void)state;
    expect((int32_t[]){5, 6, 7, 8}, (int32_t[]){5, 6, 7, 8, 9}, 4, 4, 9);
    expect((int32_t[]){5}, (int32_t[]){5, 2}, 1, 1, 2);
}

static void test_first_rejected(void **state)
{
    (void)state;
    /* Later rows agreeing with the draft do not matter once row 0 differs. */
    expect((int32_t[]){5, 6, 7, 8}, (int32_t[]){1, 6, 7, 8, 9}, 4, 0, 1);
    expect((int32_t[]){5}, (int32_t[]){4, 5}, 1, 0, 4);
}

static void test_rejected_in_the_middle(void **state)
{
    (void)state;
    expect((int32_t[]){5, 6, 7, 8}, (int32_t[]){5, 6, 0, 8, 9}, 4, 2, 0);
    expect((int32_t[]){5, 6, 7, 8}, (int32_t[]){5, 6, 7, 3, 9}, 4, 3, 3);
}

/* The held-out text as the draft, as train-exits --report uses it: the
 * round at position p drafts x[p+1 .. p+γ] and reads rows p .. p+γ. */
static void test_sliding_rounds(void **state)
{
    (void)state;
    const int32_t x[6] = {1, 2, 3, 4, 5, 6}, g[6] = {2, 3, 9, 5, 6, 7};
    expect(x + 1, g + 0, 2, 2, 9);
    expect(x + 2, g + 1, 2, 1, 9);
    expect(x + 3, g + 2, 2, 0, 9);
    expect(x + 4, g + 3, 2, 2, 7);
}

static void test_confidence(void **state)
{
    (void)state;
    const float p[5] = {0.9f, 0.8f, 0.3f, 0.95f, 0.1f};
    assert_true(verdict_confidence(p, (struct verdict){0, 1}) == 0.9f);
    assert_true(verdict_confidence(p, (struct verdict){1, 1}) == 0.8f);
    assert_true(verdict_confidence(p, (struct verdict){3, 1}) == 0.3f);
    assert_true(verdict_confidence(p, (struct verdict){4, 1}) == 0.1f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_accepted),
        cmocka_unit_test(test_first_rejected),
        cmocka_unit_test(test_rejected_in_the_middle),
        cmocka_unit_test(test_sliding_rounds),
        cmocka_unit_test(test_confidence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
